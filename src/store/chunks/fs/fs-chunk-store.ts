import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { create as createDigest } from 'multiformats/hashes/digest';
import { IntegrityError, InvalidInputError, NotFoundError, throwIfAborted, type AbortOptions } from '../../../errors.js';
import { addressFromName, assertChunkAddress, MAX_CHUNK_BYTES, SHA2_256_CODE } from '../../address.js';
import type { ChunkAddress, ChunkStat, ChunkStore, ChunkStoreFeatures } from '../chunk-store.js';
import { classify, errno, openDirectory, statFile } from './fs-files.js';
import { FsIo } from './fs-io.js';
import { chunkPathIn, legacyChunkPathIn, walkChunks } from './fs-layout.js';
import { INTEGRITY_CODE } from './fs-sync.js';

export interface FsChunkStoreOptions {
  /**
   * fsync each chunk file and its shard directory before put resolves
   * (default true). Off, a crash can leave a chunk file empty or short;
   * get then reports IntegrityError for it and the next put of the same
   * bytes rewrites it, but a manifest written after the put may point at it.
   */
  fsync?: boolean | undefined;
  /** Threads doing the disk work of put and get, 1..64 (default DEFAULT_IO_THREADS); see fs-io.ts. */
  ioThreads?: number | undefined;
}

/**
 * Puts and gets on disk at once. On the 2-core benchmark machine 1, 2 and 4
 * threads did the same within noise (3 KiB puts with fsync: 2.1–2.4 ms each
 * one at a time, 3.8–4.1 ms for three at once: the kernel serializes inode
 * creation and journal commits); 2 keeps one put going while another waits
 * on its fsync, and each thread costs a few MiB.
 */
export const DEFAULT_IO_THREADS = 2;

/** Temp files older than this at open belong to puts that were interrupted. */
const STALE_TEMP_MS = 60_000;

/**
 * Chunks as files under a directory.
 *
 * Layout v2 (written), and v1 (still read; a later version MUST read both):
 *
 *     <root>/chunks/<a>/<cid>       v2: one file per chunk, exactly the chunk bytes
 *     <root>/chunks/<a>/<b>/<cid>   v1: the same, one level deeper
 *     <root>/tmp/<cid>.<pid>.<rand> puts in progress, never read
 *
 * `<cid>` is the CID's base32 string (59 characters, always starting
 * `bafkrei`, so the front is useless for sharding). `<a>` is the two
 * characters before the last one and `<b>` the two before those. The last
 * character is skipped because it carries only 3 bits of the digest (288 bits
 * do not fill 58 base32 characters), whereas each of the others is uniform
 * over 32 values: 1,024 shard directories, created as first needed. This is
 * go-ipfs flatfs "next-to-last/2".
 *
 * Why v2 dropped v1's second level: 1,024 × 1,024 leaf directories meant
 * that, until a store held millions of chunks, nearly every put created one
 * or two directories, and creating an inode is the dearest thing a put does
 * (0.1–0.5 ms of kernel CPU each on the benchmark machine, serialized): a
 * small upload made about twelve inodes instead of five. It also cost a 4 KiB
 * directory block per chunk or so. One level of 1,024 holds 10 million chunks
 * at 10,000 names per directory, which ext4 and xfs index.
 *
 * v1 chunks are found by a second look where v2 has none (get, has, stat, a
 * put's dedup check, delete, gc) and listed alongside v2 ones, once each; a
 * chunk gc moves aside and puts back lands in v2.
 *
 * Write order: the bytes go to a fresh file in tmp/, are fsynced, then renamed
 * into their shard and the shard directory is fsynced. rename is atomic within
 * a filesystem, so a reader sees either no file or the whole chunk, and
 * several processes may share one root (each put has its own temp name).
 *
 * put, get and the renames run on the store's I/O threads (fs-io.ts): one
 * message per call instead of ten promise round trips, with the hashing off
 * the event loop. The rest (stat, delete, list, gc) is rare and stays on
 * fs.promises.
 *
 * Bounds: get allocates at most MAX_CHUNK_BYTES; list and usage stream the
 * directory tree (fs.Dir) rather than reading it whole. The store keeps no
 * queue of its own: concurrency is whatever the caller allows, and
 * `ioThreads` puts and gets touch the disk at once.
 */
export class FsChunkStore implements ChunkStore {
  readonly features: ChunkStoreFeatures = { delete: true, list: true };
  private readonly chunksDir: string;
  private readonly tmpDir: string;

  private readonly io: FsIo;

  private constructor(
    readonly root: string,
    private readonly fsync: boolean,
    ioThreads: number,
  ) {
    this.chunksDir = path.join(root, 'chunks');
    this.tmpDir = path.join(root, 'tmp');
    this.io = new FsIo({ chunksDir: this.chunksDir, tmpDir: this.tmpDir, maxChunkBytes: MAX_CHUNK_BYTES, threads: ioThreads });
  }

  /** Opens (creating directories as needed) and removes temp files left by interrupted puts. */
  static async open(root: string, options: FsChunkStoreOptions = {}): Promise<FsChunkStore> {
    const threads = options.ioThreads ?? DEFAULT_IO_THREADS;
    if (!Number.isSafeInteger(threads) || threads < 1 || threads > 64) throw new RangeError('ioThreads must be an integer in [1, 64]');
    const store = new FsChunkStore(path.resolve(root), options.fsync ?? true, threads);
    await fsp.mkdir(store.chunksDir, { recursive: true });
    await fsp.mkdir(store.tmpDir, { recursive: true });
    // Only old ones: another process sharing this root may be mid-put right now.
    await store.removeTempFilesOlderThan(Date.now() - STALE_TEMP_MS);
    return store;
  }

  /** Where `address` lives (whether or not it is there); for tests and operators. */
  chunkPath(address: ChunkAddress): string {
    return chunkPathIn(this.chunksDir, address);
  }

  /** Where layout v1 kept `address`: still read, never written. */
  legacyChunkPath(address: ChunkAddress): string {
    return legacyChunkPathIn(this.chunksDir, address);
  }

  /** The file holding `address` in either layout, v2 first, with its stat; undefined when neither has it. */
  private async locate(address: ChunkAddress): Promise<{ file: string; size: number; mtimeMs: number } | undefined> {
    for (const file of [this.chunkPath(address), this.legacyChunkPath(address)]) {
      const stat = await statFile(file);
      if (stat) return { file, ...stat };
    }
    return undefined;
  }

  async put(bytes: Uint8Array, options: AbortOptions = {}): Promise<ChunkAddress> {
    const { signal } = options;
    throwIfAborted(signal);
    if (bytes.length > MAX_CHUNK_BYTES) {
      throw new InvalidInputError(`chunk of ${bytes.length} bytes exceeds ${MAX_CHUNK_BYTES}`);
    }
    // Idempotent: an existing file of the right size is this chunk (the name
    // is its hash). A wrong size means a torn or truncated copy from an
    // unsynced crash; the I/O thread then replaces it atomically. (A same-size
    // copy with flipped bits is left for get and `capstan check` to find:
    // telling would mean reading and hashing it on every put.) The mtime is
    // refreshed so gc's grace period protects a deduplicated chunk exactly
    // like a freshly written one; if gc removed it between the stat and the
    // touch, the touch fails and the chunk is written again.
    let digest: Uint8Array;
    try {
      digest = await this.io.put(bytes, this.fsync);
    } catch (err) {
      throw classify(err);
    }
    throwIfAborted(signal);
    return CID.create(1, raw.code, createDigest(SHA2_256_CODE, digest));
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    let bytes: Uint8Array;
    try {
      bytes = await this.io.get([this.chunkPath(address), this.legacyChunkPath(address)], address.multihash.digest);
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new NotFoundError(`no chunk ${address.toString()}`);
      if (errno(err) === INTEGRITY_CODE) throw new IntegrityError(address.toString(), 'chunk');
      throw classify(err);
    }
    throwIfAborted(options.signal);
    return bytes;
  }

  async has(address: ChunkAddress, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    return (await this.locate(address)) !== undefined;
  }

  async delete(address: ChunkAddress, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    // No directory fsync: a delete undone by a crash leaves a valid chunk
    // behind, which the next gc removes again. Empty shard directories stay;
    // removing them would race with a put renaming into them.
    for (const file of [this.chunkPath(address), this.legacyChunkPath(address)]) {
      await fsp.unlink(file).catch((err) => {
        if (errno(err) !== 'ENOENT') throw classify(err);
      });
    }
  }

  async stat(address: ChunkAddress, options: AbortOptions = {}): Promise<ChunkStat | undefined> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const found = await this.locate(address);
    return found && { bytes: found.size, lastPutMs: found.mtimeMs };
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
    const before = await this.locate(address);
    if (before === undefined || before.mtimeMs >= cutoffMs) return undefined;
    const quarantine = path.join(this.tmpDir, `${GC_PREFIX}${address.toString()}.${process.pid}.${randomBytes(6).toString('hex')}`);
    try {
      await fsp.rename(before.file, quarantine);
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw classify(err);
    }
    const after = await statFile(quarantine);
    if (after === undefined) return undefined; // another open() put it back
    if (after.mtimeMs >= cutoffMs) {
      await this.renameIntoShard(quarantine, this.chunkPath(address));
      return undefined;
    }
    await fsp.unlink(quarantine).catch((err) => {
      if (errno(err) !== 'ENOENT') throw classify(err);
    });
    return after.size;
  }

  async *list(options: AbortOptions = {}): AsyncIterable<ChunkAddress> {
    for await (const { address } of walkChunks(this.chunksDir, options.signal)) yield address;
  }

  /** Walks every chunk file and stats it: O(chunks), for `capstan status` and benchmarks, not hot paths. */
  async usage(options: AbortOptions = {}): Promise<{ chunks: number; bytes: number }> {
    let chunks = 0;
    let bytes = 0;
    for await (const { file } of walkChunks(this.chunksDir, options.signal)) {
      const size = (await statFile(file))?.size;
      if (size === undefined) continue; // deleted while we walked
      chunks += 1;
      bytes += size;
    }
    return { chunks, bytes };
  }

  async close(): Promise<void> {
    // No file handles are held between calls; only the I/O threads.
    await this.io.close();
  }

  private async renameIntoShard(temp: string, final: string): Promise<void> {
    await this.io.place(temp, final, this.fsync);
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
    const address = addressFromName(name.slice(GC_PREFIX.length).split('.')[0] ?? '');
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
