import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { throwIfAborted, type AbortOptions } from '../../errors.js';
import { addressKey, assertChunkAddress, isChunkAddress, parseAddress, verifyChunk } from '../address.js';
import type { ChunkAddress, ChunkStore, ChunkStoreFeatures } from './chunk-store.js';

export interface CachingChunkStoreOptions {
  /** Directory of cached chunk files (created if missing; owned by this cache: stray files in it are removed). */
  dir: string;
  /** Bound on the cached bytes; the least recently used chunks are evicted past it. 0 turns caching off. */
  maxBytes: number;
}

const TEMP_PREFIX = '.tmp-';

/**
 * A bounded read cache on local disk in front of any ChunkStore (meant for
 * S3, where a get is a round trip and costs money).
 *
 *     <dir>/<cid>          exactly the chunk bytes
 *     <dir>/.tmp-<random>  a fill in progress; removed at open
 *
 * Only get fills the cache: a gateway mostly uploads data that is not read
 * back soon, and a put-filled cache would evict what readers use. has,
 * delete, list and usage always ask the backend: a cache hit must never
 * answer `has` for a chunk the backend lost or a gc deleted, or a writer
 * would skip re-uploading it. delete drops the cached copy too.
 *
 * Every read from the cache is re-hashed (verifyChunk, cheap next to a
 * network get); a cache file that is short, rotten or gone is dropped and
 * the chunk fetched again, so a damaged cache costs time, never data.
 *
 * Bounds: at most `maxBytes` of chunk files (a chunk larger than that is not
 * cached); the LRU order is a Map in memory, one entry per cached file,
 * seeded from the files' access times at open. Cache write failures (a full
 * disk) are ignored: the cache is an optimisation.
 */
export class CachingChunkStore implements ChunkStore {
  readonly features: ChunkStoreFeatures;
  /** cid string → size; Map order is the LRU order, oldest first. */
  private readonly entries = new Map<string, number>();
  private bytes = 0;

  private constructor(
    readonly inner: ChunkStore,
    readonly dir: string,
    readonly maxBytes: number,
  ) {
    this.features = inner.features;
    // Optional methods exist here exactly when the wrapped store has them.
    if (inner.stat) this.stat = inner.stat.bind(inner);
    const deleteIfIdleSince = inner.deleteIfIdleSince?.bind(inner);
    if (deleteIfIdleSince) {
      this.deleteIfIdleSince = async (address, cutoffMs, options) => {
        const freed = await deleteIfIdleSince(address, cutoffMs, options);
        if (freed !== undefined) await this.drop(address.toString());
        return freed;
      };
    }
    const prefetch = inner.prefetch?.bind(inner);
    if (prefetch) this.prefetch = (addresses) => prefetch(addresses.filter((a) => !(isChunkAddress(a) && this.entries.has(addressKey(a)))));
  }

  readonly stat?: NonNullable<ChunkStore['stat']>;
  readonly deleteIfIdleSince?: NonNullable<ChunkStore['deleteIfIdleSince']>;
  /**
   * A sequential reader's hint (tree/file/reader.ts), passed on for the
   * chunks this cache does not hold. Without it a pack store behind the
   * cache, S3's by default, never heard the hint and asked its index once a
   * chunk: with the index in PostgreSQL, a round trip each.
   */
  readonly prefetch?: NonNullable<ChunkStore['prefetch']>;

  static async open(inner: ChunkStore, options: CachingChunkStoreOptions): Promise<CachingChunkStore> {
    const cache = new CachingChunkStore(inner, path.resolve(options.dir), options.maxBytes);
    await fsp.mkdir(cache.dir, { recursive: true });
    const found: { name: string; size: number; atimeMs: number }[] = [];
    for (const name of await fsp.readdir(cache.dir)) {
      const file = path.join(cache.dir, name);
      const stat = await fsp.stat(file).catch(() => undefined);
      if (stat?.isFile() && canonicalAddress(name) !== undefined) found.push({ name, size: stat.size, atimeMs: stat.atimeMs });
      else if (stat?.isFile()) await fsp.rm(file, { force: true }); // temp files of an interrupted fill, strays
    }
    found.sort((a, b) => a.atimeMs - b.atimeMs);
    for (const { name, size } of found) cache.remember(name, size);
    await cache.evict();
    return cache;
  }

  /** Bytes and chunks held in the cache now (for metrics and tests). */
  get cached(): { chunks: number; bytes: number } {
    return { chunks: this.entries.size, bytes: this.bytes };
  }

  put(bytes: Uint8Array, options?: AbortOptions): Promise<ChunkAddress> {
    return this.inner.put(bytes, options);
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const name = address.toString();
    if (this.entries.has(name)) {
      const hit = await this.readCached(address, name);
      if (hit !== undefined) return hit;
    }
    const bytes = await this.inner.get(address, options);
    await this.fill(name, bytes);
    return bytes;
  }

  has(address: ChunkAddress, options?: AbortOptions): Promise<boolean> {
    return this.inner.has(address, options);
  }

  async delete(address: ChunkAddress, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    await this.drop(address.toString());
    await this.inner.delete(address, options);
  }

  list(options?: AbortOptions): AsyncIterable<ChunkAddress> {
    return this.inner.list(options);
  }

  async usage(options: AbortOptions = {}): Promise<{ chunks: number; bytes: number }> {
    if (!this.inner.usage) throw new TypeError('the wrapped store has no usage()');
    return this.inner.usage(options);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }

  private async readCached(address: ChunkAddress, name: string): Promise<Uint8Array | undefined> {
    try {
      const bytes = new Uint8Array(await fsp.readFile(path.join(this.dir, name)));
      verifyChunk(address, bytes);
      // Most recently used: move to the end of the Map.
      const size = this.entries.get(name);
      if (size !== undefined) {
        this.entries.delete(name);
        this.entries.set(name, size);
      }
      return bytes;
    } catch {
      // Rotten (IntegrityError), evicted meanwhile (ENOENT) or unreadable: all
      // the same here, the backend still has the chunk.
      await this.drop(name);
      return undefined;
    }
  }

  private async fill(name: string, bytes: Uint8Array): Promise<void> {
    if (this.maxBytes === 0 || bytes.length > this.maxBytes || this.entries.has(name)) return;
    const temp = path.join(this.dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await fsp.writeFile(temp, bytes, { flag: 'wx' });
      await fsp.rename(temp, path.join(this.dir, name));
    } catch {
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      return;
    }
    if (!this.entries.has(name)) this.remember(name, bytes.length);
    await this.evict();
  }

  private remember(name: string, size: number): void {
    this.entries.set(name, size);
    this.bytes += size;
  }

  private async drop(name: string): Promise<void> {
    const size = this.entries.get(name);
    if (size !== undefined) {
      this.entries.delete(name);
      this.bytes -= size;
    }
    await fsp.rm(path.join(this.dir, name), { force: true }).catch(() => undefined);
  }

  private async evict(): Promise<void> {
    while (this.bytes > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      await this.drop(oldest.value);
    }
  }
}

function canonicalAddress(name: string): ChunkAddress | undefined {
  if (name.startsWith(TEMP_PREFIX) || !name.startsWith('b')) return undefined;
  try {
    const address = parseAddress(name);
    return isChunkAddress(address) && address.toString() === name ? address : undefined;
  } catch {
    return undefined;
  }
}
