import { randomBytes } from 'node:crypto';
import { promises as fsp, type Dir } from 'node:fs';
import path from 'node:path';
import {
  IntegrityError,
  InvalidInputError,
  NotFoundError,
  TransientError,
  throwIfAborted,
  type AbortOptions,
} from '../errors.js';
import { addressOf, assertChunkAddress, isChunkAddress, MAX_CHUNK_BYTES, parseAddress, verifyChunk } from './address.js';
import type { ChunkAddress, ChunkStat, ChunkStore, ChunkStoreFeatures } from './chunk-store.js';

export interface FsChunkStoreOptions {
  /**
   * fsync each chunk file and its shard directory before put resolves
   * (default true). Off, a crash can leave a chunk file empty or short;
   * get then reports IntegrityError for it and the next put of the same
   * bytes rewrites it, but a manifest written after the put may point at it.
   */
  fsync?: boolean;
}

/** Temp files older than this at open belong to puts that were interrupted. */
const STALE_TEMP_MS = 60_000;
const SHARD_NAME = /^[a-z2-7]{2}$/;
/** errno codes that say "try again", as opposed to a broken disk or a bug. */
const TRANSIENT_CODES = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT']);

/**
 * Chunks as files under a directory.
 *
 * Layout (format v1; a later version MUST still read it):
 *
 *     <root>/chunks/<a>/<b>/<cid>   one file per chunk, exactly the chunk bytes
 *     <root>/tmp/<cid>.<pid>.<rand> puts in progress, never read
 *
 * `<cid>` is the CID's base32 string (59 characters, always starting
 * `bafkrei`, so the front is useless for sharding). `<a>` is the two
 * characters before the last one and `<b>` the two before those. The last
 * character is skipped because it carries only 3 bits of the digest (288 bits
 * do not fill 58 base32 characters), whereas each of the others is uniform
 * over 32 values: 1,024 directories per level, created as first needed. This
 * is go-ipfs flatfs "next-to-last/2", plus one level.
 *
 * Write order: the bytes go to a fresh file in tmp/, are fsynced, then renamed
 * into their shard and the shard directory is fsynced. rename is atomic within
 * a filesystem, so a reader sees either no file or the whole chunk, and
 * several processes may share one root (each put has its own temp name).
 *
 * Bounds: get allocates at most MAX_CHUNK_BYTES; list and usage stream the
 * directory tree (fs.Dir) rather than reading it whole. The store keeps no
 * queue of its own: each call does its file operations directly, so
 * concurrency is whatever the caller allows (and libuv's thread pool, 4 by
 * default, caps parallel disk calls).
 */
export class FsChunkStore implements ChunkStore {
  readonly features: ChunkStoreFeatures = { delete: true, list: true };
  private readonly chunksDir: string;
  private readonly tmpDir: string;

  private constructor(
    readonly root: string,
    private readonly fsync: boolean,
  ) {
    this.chunksDir = path.join(root, 'chunks');
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Opens (creating directories as needed) and removes temp files left by interrupted puts. */
  static async open(root: string, options: FsChunkStoreOptions = {}): Promise<FsChunkStore> {
    const store = new FsChunkStore(path.resolve(root), options.fsync ?? true);
    await fsp.mkdir(store.chunksDir, { recursive: true });
    await fsp.mkdir(store.tmpDir, { recursive: true });
    // Only old ones: another process sharing this root may be mid-put right now.
    await store.removeTempFilesOlderThan(Date.now() - STALE_TEMP_MS);
    return store;
  }

  /** Where `address` lives (whether or not it is there); for tests and operators. */
  chunkPath(address: ChunkAddress): string {
    const name = address.toString();
    return path.join(this.chunksDir, name.slice(-3, -1), name.slice(-5, -3), name);
  }

  async put(bytes: Uint8Array, options: AbortOptions = {}): Promise<ChunkAddress> {
    const { signal } = options;
    throwIfAborted(signal);
    if (bytes.length > MAX_CHUNK_BYTES) {
      throw new InvalidInputError(`chunk of ${bytes.length} bytes exceeds ${MAX_CHUNK_BYTES}`);
    }
    const address = addressOf(bytes);
    const final = this.chunkPath(address);
    // Idempotent: an existing file of the right size is this chunk (the name
    // is its hash). A wrong size means a torn or truncated copy from an
    // unsynced crash; fall through and replace it atomically. (A same-size
    // copy with flipped bits is left for get and `capstan check` to find:
    // telling would mean reading and hashing it on every put.) The mtime is
    // refreshed so gc's grace period protects a deduplicated chunk exactly
    // like a freshly written one; if gc removed it between the stat and the
    // touch, the touch fails and the chunk is written again.
    if ((await statSize(final)) === bytes.length && (await touch(final))) return address;
    throwIfAborted(signal);

    const temp = path.join(this.tmpDir, `${address.toString()}.${process.pid}.${randomBytes(6).toString('hex')}`);
    try {
      const file = await fsp.open(temp, 'wx');
      try {
        await file.writeFile(bytes);
        if (this.fsync) await file.datasync();
      } finally {
        await file.close();
      }
      throwIfAborted(signal);
      await this.renameIntoShard(temp, final);
    } catch (err) {
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      throw classify(err);
    }
    return address;
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    let file;
    try {
      file = await fsp.open(this.chunkPath(address), 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new NotFoundError(`no chunk ${address.toString()}`);
      throw classify(err);
    }
    try {
      const { size } = await file.stat();
      // Nothing we wrote is this big; do not let a planted file make us allocate it.
      if (size > MAX_CHUNK_BYTES) throw new IntegrityError(address.toString(), 'chunk');
      const bytes = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        throwIfAborted(options.signal);
        const { bytesRead } = await file.read(bytes, filled, size - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      // A short read (the file shrank under us) is never a short result.
      if (filled !== size) throw new IntegrityError(address.toString(), 'chunk');
      verifyChunk(address, bytes);
      return bytes;
    } catch (err) {
      throw classify(err);
    } finally {
      await file.close();
    }
  }

  async has(address: ChunkAddress, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    return (await statSize(this.chunkPath(address))) !== undefined;
  }

  async delete(address: ChunkAddress, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    // No directory fsync: a delete undone by a crash leaves a valid chunk
    // behind, which the next gc removes again. Empty shard directories stay;
    // removing them would race with a put renaming into them.
    await fsp.unlink(this.chunkPath(address)).catch((err) => {
      if (errno(err) !== 'ENOENT') throw classify(err);
    });
  }

  async stat(address: ChunkAddress, options: AbortOptions = {}): Promise<ChunkStat | undefined> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const stat = await statFile(this.chunkPath(address));
    return stat && { bytes: stat.size, lastPutMs: stat.mtimeMs };
  }

  /**
   * gc's delete. A put of the same bytes may race with it: the chunk is first
   * renamed out of its shard into tmp/gc.* (from then on a put's touch fails
   * and the put writes a fresh copy), then its mtime is read again; a put
   * that touched it before the rename shows there, and the chunk goes back.
   * A crash between the two renames leaves tmp/gc.*, which open() puts back
   * rather than deleting, so the worst case is garbage kept until next gc.
   */
  async deleteIfIdleSince(address: ChunkAddress, cutoffMs: number, options: AbortOptions = {}): Promise<number | undefined> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const final = this.chunkPath(address);
    const before = await statFile(final);
    if (before === undefined || before.mtimeMs >= cutoffMs) return undefined;
    const quarantine = path.join(this.tmpDir, `${GC_PREFIX}${address.toString()}.${process.pid}.${randomBytes(6).toString('hex')}`);
    try {
      await fsp.rename(final, quarantine);
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw classify(err);
    }
    const after = await statFile(quarantine);
    if (after === undefined) return undefined; // another open() put it back
    if (after.mtimeMs >= cutoffMs) {
      await this.renameIntoShard(quarantine, final);
      return undefined;
    }
    await fsp.unlink(quarantine).catch((err) => {
      if (errno(err) !== 'ENOENT') throw classify(err);
    });
    return after.size;
  }

  async *list(options: AbortOptions = {}): AsyncIterable<ChunkAddress> {
    for await (const { address } of this.walk(options)) yield address;
  }

  /** Walks every chunk file and stats it: O(chunks), for `capstan status` and benchmarks, not hot paths. */
  async usage(options: AbortOptions = {}): Promise<{ chunks: number; bytes: number }> {
    let chunks = 0;
    let bytes = 0;
    for await (const { file } of this.walk(options)) {
      const size = await statSize(file);
      if (size === undefined) continue; // deleted while we walked
      chunks += 1;
      bytes += size;
    }
    return { chunks, bytes };
  }

  async close(): Promise<void> {
    // No handles are held between calls.
  }

  private async renameIntoShard(temp: string, final: string): Promise<void> {
    const shard = path.dirname(final);
    try {
      await fsp.rename(temp, final);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
      await this.makeShard(shard);
      await fsp.rename(temp, final);
    }
    if (this.fsync) await syncDirectory(shard);
  }

  /** Creates both shard levels; a new directory's entry is fsynced into its parent. */
  private async makeShard(shard: string): Promise<void> {
    const upper = path.dirname(shard);
    for (const [dir, parent] of [
      [upper, this.chunksDir],
      [shard, upper],
    ] as const) {
      try {
        await fsp.mkdir(dir);
        if (this.fsync) await syncDirectory(parent);
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
      }
    }
  }

  /** Every chunk file in its right place; stray or misplaced files are ignored, never yielded. */
  private async *walk(options: AbortOptions): AsyncGenerator<{ address: ChunkAddress; file: string }> {
    const { signal } = options;
    throwIfAborted(signal);
    for await (const upper of await openDirectory(this.chunksDir)) {
      if (!upper.isDirectory() || !SHARD_NAME.test(upper.name)) continue;
      const upperPath = path.join(this.chunksDir, upper.name);
      for await (const lower of await openDirectory(upperPath)) {
        if (!lower.isDirectory() || !SHARD_NAME.test(lower.name)) continue;
        const lowerPath = path.join(upperPath, lower.name);
        for await (const entry of await openDirectory(lowerPath)) {
          throwIfAborted(signal);
          if (!entry.isFile()) continue;
          const address = tryParseAddress(entry.name);
          if (address === undefined) continue;
          const file = path.join(lowerPath, entry.name);
          if (this.chunkPath(address) === file) yield { address, file };
        }
      }
    }
  }

  private async removeTempFilesOlderThan(cutoffMs: number): Promise<void> {
    for await (const entry of await openDirectory(this.tmpDir)) {
      if (!entry.isFile()) continue;
      const file = path.join(this.tmpDir, entry.name);
      if (entry.name.startsWith(GC_PREFIX)) {
        await this.restoreQuarantined(entry.name, file);
        continue;
      }
      const stat = await fsp.stat(file).catch(() => undefined);
      if (stat !== undefined && stat.mtimeMs < cutoffMs) await fsp.rm(file, { force: true });
    }
  }

  /** A chunk gc had moved aside when it crashed: put it back (gc will decide again). */
  private async restoreQuarantined(name: string, file: string): Promise<void> {
    const address = tryParseAddress(name.slice(GC_PREFIX.length).split('.')[0] ?? '');
    if (address === undefined) {
      await fsp.rm(file, { force: true });
      return;
    }
    await this.renameIntoShard(file, this.chunkPath(address)).catch((err) => {
      if (errno(err) !== 'ENOENT') throw classify(err);
    });
  }
}

/** Name prefix, in tmp/, of chunks gc has moved aside before deleting them. */
const GC_PREFIX = 'gc.';

/** Marks a chunk as just put (its mtime is gc's age); false if it is gone. */
async function touch(file: string): Promise<boolean> {
  const now = new Date();
  try {
    await fsp.utimes(file, now, now);
    return true;
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw classify(err);
  }
}

async function statFile(file: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const stat = await fsp.stat(file);
    return stat.isFile() ? { size: stat.size, mtimeMs: stat.mtimeMs } : undefined;
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw classify(err);
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** Typed errors pass through; errno codes that may clear up become TransientError; the rest stay as they are (a bug or a broken disk). */
function classify(err: unknown): unknown {
  const code = errno(err);
  if (code !== undefined && TRANSIENT_CODES.has(code)) {
    return new TransientError(`chunk store file operation failed (${code})`, { cause: err });
  }
  return err;
}

/** Size of a regular file, or undefined when there is none. */
async function statSize(file: string): Promise<number | undefined> {
  try {
    const stat = await fsp.stat(file);
    return stat.isFile() ? stat.size : undefined;
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw classify(err);
  }
}

/** A Dir to iterate (which closes itself when the loop ends or breaks), or nothing if the directory vanished. */
async function openDirectory(dir: string): Promise<Dir | []> {
  try {
    return await fsp.opendir(dir);
  } catch (err) {
    if (errno(err) === 'ENOENT') return [];
    throw classify(err);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function tryParseAddress(name: string): ChunkAddress | undefined {
  if (!name.startsWith('b')) return undefined;
  try {
    const address = parseAddress(name);
    // Only the canonical spelling counts, so one chunk is never listed twice.
    return isChunkAddress(address) && address.toString() === name ? address : undefined;
  } catch {
    return undefined;
  }
}
