import { createHash } from 'node:crypto';
import { AeadError, GCM_TAG_BYTES, OFFLOAD_MIN_BYTES, openConvergentOwned, openConvergentShared } from '../../crypto/index.js';
import { FileReadCap, LiteralCap, type FileCap } from '../../cap/index.js';
import { IntegrityError, InvalidInputError, throwIfAborted, type AbortOptions } from '../../errors.js';
import type { ChunkAddress, ChunkStore } from '../../store/chunks/chunk-store.js';
import type { ChecksumAlgorithm, Checksums, FileReader } from '../api.js';
import { abortable, ignoreRejection } from './abortable.js';
import { CHUNK_KEY_BYTES, chunkLength, type ManifestHeader } from './format.js';
import { addressAt, fetchManifest, openAddressSection, openKeySection } from './manifest.js';
import { checksumOrCompute, checksumsOf, copyChecksums } from './checksums.js';
import { copyBytes } from '../../util/copy-bytes.js';
import type { MemoryBudget } from '../../util/memory-budget.js';
import { giveSlot, takeSlot, type ChunkSlot } from './chunk-slots.js';
import { readCache } from './read-cache.js';

/** Decrypted chunks kept for random and sequential read() callers. */
export const READ_CACHE_CHUNKS = 4;
/** Chunks stream() fetches ahead of the one it is yielding. */
export const STREAM_PREFETCH_CHUNKS = 4;
/** Chunks a sequential reader tells the store about at once (ChunkStore.prefetch). */
const PREFETCH_HINT_CHUNKS = 32;
/**
 * Largest single read(): the result is allocated whole, so a caller asking
 * for a whole big file gets InvalidInputError and should use stream().
 * SFTP reads are at most a few hundred KiB.
 */
export const MAX_READ_BYTES = 64 * 1024 * 1024;

/**
 * Opens a file cap for reading: a literal needs no store, a CHK cap fetches
 * and checks its manifest. `memory`: the gateway's budget, which the chunks
 * the reader fetches ahead are taken from (see ChunkedFileReader).
 */
export async function openFile(
  store: ChunkStore,
  cap: FileCap,
  options: AbortOptions & { memory?: MemoryBudget | undefined } = {},
): Promise<FileReader> {
  throwIfAborted(options.signal);
  if (cap instanceof LiteralCap) return new LiteralFileReader(cap.data);
  if (cap instanceof FileReadCap) {
    const manifest = await fetchManifest(store, cap.manifestHash, cap.size, options);
    const addresses = openAddressSection(manifest, cap.verifyKey);
    const { keys, checksums } = openKeySection(manifest, cap.manifestKey);
    return new ChunkedFileReader(store, manifest.header, addresses, keys, checksums, options.memory);
  }
  throw new InvalidInputError('not a file cap');
}

/** Normalizes a read range; undefined when it is empty. */
function clampRange(size: number, start: number, end: number): { start: number; end: number } | undefined {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < 0) {
    throw new InvalidInputError('read range must be non-negative integers');
  }
  const to = Math.min(end, size);
  return start < to ? { start, end: to } : undefined;
}

function readRange(size: number, offset: number, length: number): { start: number; end: number } | undefined {
  if (!Number.isSafeInteger(length) || length < 0) throw new InvalidInputError('read length must be a non-negative integer');
  const range = clampRange(size, offset, offset < size ? offset + Math.min(length, size - offset) : offset);
  if (range && range.end - range.start > MAX_READ_BYTES) {
    throw new InvalidInputError(`reads are limited to ${MAX_READ_BYTES} bytes; stream larger ranges`);
  }
  return range;
}

export class LiteralFileReader implements FileReader {
  readonly #data: Uint8Array;
  constructor(data: Uint8Array) {
    this.#data = data;
  }
  get size(): number {
    return this.#data.length;
  }
  async checksums(): Promise<Checksums> {
    return checksumsOf(this.#data);
  }
  async checksum(algorithm: ChecksumAlgorithm): Promise<Uint8Array> {
    return new Uint8Array(createHash(algorithm).update(this.#data).digest());
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const range = readRange(this.size, offset, length);
    return range ? new Uint8Array(this.#data.subarray(range.start, range.end)) : new Uint8Array(0);
  }
  async readInto(offset: number, target: Uint8Array): Promise<number> {
    const range = readRange(this.size, offset, target.length);
    if (!range) return 0;
    target.set(this.#data.subarray(range.start, range.end));
    return range.end - range.start;
  }
  async *stream(start = 0, end = Number.MAX_SAFE_INTEGER): AsyncIterable<Uint8Array> {
    const range = clampRange(this.size, start, end);
    if (range) yield new Uint8Array(this.#data.subarray(range.start, range.end));
  }
}

/**
 * Reads a CHK file. Every chunk is checked three ways before a byte of it is
 * returned: the store re-hashes it against its CID, its length must be the
 * expected chunk length plus the tag, and AES-GCM must authenticate it under
 * its key from the (already authenticated) manifest. A failure is
 * IntegrityError naming the chunk's CID; a missing chunk is the store's
 * NotFoundError.
 *
 * Bounds: read() keeps at most READ_CACHE_CHUNKS decrypted chunks (LRU; a
 * sequential reader's one-chunk read-ahead counts in it), and all readers
 * together at most READ_CACHE_BYTES (read-cache.ts); stream() holds at most
 * STREAM_PREFETCH_CHUNKS + 1 chunks and bypasses the cache, so one long
 * stream does not evict the chunks of random readers.
 *
 * With a memory budget, what is fetched ahead of the caller draws from it:
 * read()'s one chunk ahead from the moment it is asked for until a read
 * uses it, the cache drops it, its fetch fails or close() is called, and
 * each chunk stream() prefetches beyond the next one until it is yielded
 * (stream()'s consumers are the gateway's own: copies, checksums). When the
 * budget refuses, the reader simply does not fetch ahead. read()'s chunk
 * ahead waits for the client's next READ, and under pressure the client is
 * not read: so it is taken only below the pressure mark and dropped when
 * pressure starts (fetched again if asked for), or the budget could wait
 * for a client it stopped reading. The same rule makes a reader dropped
 * without close() harmless: what it holds goes back at the next pressure.
 */
export class ChunkedFileReader implements FileReader {
  /** LRU by Map insertion order: index → decrypted chunk (its fetch is shared by concurrent readers). */
  readonly #cache = new Map<number, CachedChunk>();
  #lastReadEnd = -1;
  /** The chunks last hinted to the store, [from, to). */
  #hinted = { from: 0, to: 0 };
  /** Chunks fetched ahead that hold budget bytes (index → bytes), until read, dropped or failed. */
  readonly #ahead = new Map<number, number>();
  /** While #ahead holds anything: stops watching the budget's pressure. */
  #unwatch: (() => void) | undefined;

  constructor(
    private readonly store: ChunkStore,
    private readonly header: ManifestHeader,
    private readonly addresses: Uint8Array,
    private readonly keys: Uint8Array,
    private readonly sums: Checksums,
    private readonly memory?: MemoryBudget | undefined,
  ) {}

  close(): void {
    for (const index of [...this.#ahead.keys()]) this.#giveBack(index);
    for (const [index, chunk] of [...this.#cache]) this.#uncache(index, chunk);
  }

  /** Takes chunk `index` out of this reader's cache and the ledger, if `entry` is still what it holds there. */
  #uncache(index: number, entry: CachedChunk): void {
    if (this.#cache.get(index) !== entry) return;
    this.#cache.delete(index);
    readCache.remove(entry);
    entry.drop();
    this.#giveBack(index);
  }

  #holdAhead(index: number, bytes: number): void {
    this.#ahead.set(index, bytes);
    this.#unwatch ??= this.memory?.watch((pressured) => {
      if (!pressured) return;
      for (const ahead of [...this.#ahead.keys()]) {
        const entry = this.#cache.get(ahead);
        if (entry !== undefined) this.#uncache(ahead, entry);
        this.#giveBack(ahead);
      }
    });
  }

  #giveBack(index: number): void {
    const bytes = this.#ahead.get(index);
    if (bytes === undefined) return;
    this.#ahead.delete(index);
    this.memory?.release(bytes);
    if (this.#ahead.size === 0) {
      this.#unwatch?.();
      this.#unwatch = undefined;
    }
  }

  get size(): number {
    return this.header.size;
  }

  async checksums(): Promise<Checksums> {
    return copyChecksums(this.sums);
  }

  checksum(algorithm: ChecksumAlgorithm, options: AbortOptions = {}): Promise<Uint8Array> {
    return checksumOrCompute(this, this.sums, algorithm, options);
  }

  async read(offset: number, length: number, options: AbortOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal);
    const range = readRange(this.size, offset, length);
    if (!range) return new Uint8Array(0);
    const out = new Uint8Array(range.end - range.start);
    await this.#copyRange(range, out, options);
    return out;
  }

  async readInto(offset: number, target: Uint8Array, options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    const range = readRange(this.size, offset, target.length);
    if (!range) return 0;
    await this.#copyRange(range, target, options);
    return range.end - range.start;
  }

  /** Copies `range` of the file into the start of `out`, through the chunk cache, then reads ahead if sequential. */
  async #copyRange(range: { start: number; end: number }, out: Uint8Array, options: AbortOptions): Promise<void> {
    const { chunkSize } = this.header;
    const first = Math.floor(range.start / chunkSize);
    const last = Math.floor((range.end - 1) / chunkSize);
    for (let windowStart = first; windowStart <= last; windowStart += READ_CACHE_CHUNKS) {
      const windowEnd = Math.min(last, windowStart + READ_CACHE_CHUNKS - 1);
      const used: CachedChunk[] = [];
      for (let i = windowStart; i <= windowEnd; i++) {
        used.push(this.#cached(i).use());
        // Asked for now: no longer ahead of the reader (it stays cached, within READ_CACHE_CHUNKS).
        this.#giveBack(i);
      }
      try {
        const chunks = await abortable(Promise.all(used.map((c) => c.bytes)), options.signal);
        chunks.forEach((chunk, k) => {
          const chunkStart = (windowStart + k) * chunkSize;
          const from = Math.max(range.start, chunkStart) - chunkStart;
          const to = Math.min(range.end, chunkStart + chunk.length) - chunkStart;
          copyBytes(out, chunk.subarray(from, to), chunkStart + from - range.start);
        });
      } finally {
        for (const chunk of used) chunk.done();
      }
    }
    // A read starting where the previous one ended is a sequential reader
    // (sftp get, cp from sshfs, both pipelined in order): fetch its next
    // chunk now, so it does not stall at every chunk boundary. Random
    // readers do not trigger this, so they keep the whole cache.
    const sequential = range.start === this.#lastReadEnd;
    this.#lastReadEnd = range.end;
    const next = last + 1;
    if (sequential && next < this.header.chunkCount) this.#hintAhead(next);
    if (sequential && next < this.header.chunkCount && !this.#cache.has(next)) {
      const bytes = chunkLength(this.header, next) + GCM_TAG_BYTES;
      if (this.memory !== undefined) {
        if (!this.memory.tryAcquire(bytes, { belowPressure: true })) return;
        this.#holdAhead(next, bytes);
      }
      const fetch = this.#cached(next).bytes;
      ignoreRejection(fetch);
      fetch.catch(() => this.#giveBack(next));
    }
  }

  async *stream(start = 0, end = Number.MAX_SAFE_INTEGER, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    throwIfAborted(options.signal);
    const range = clampRange(this.size, start, end);
    if (!range) return;
    const { chunkSize } = this.header;
    const first = Math.floor(range.start / chunkSize);
    const last = Math.floor((range.end - 1) / chunkSize);
    const ahead: Promise<Uint8Array>[] = [];
    /** Budget bytes held by each entry of `ahead` (0: the next chunk, the stream's own). */
    const held: number[] = [];
    let next = first;
    try {
      for (let i = first; i <= last; i++) {
        while (next <= last && ahead.length <= STREAM_PREFETCH_CHUNKS) {
          let bytes = 0;
          if (ahead.length > 0 && this.memory !== undefined) {
            bytes = chunkLength(this.header, next) + GCM_TAG_BYTES;
            if (!this.memory.tryAcquire(bytes)) break;
          }
          this.#hintAhead(next);
          const fetch = this.#fetch(next++, options);
          ignoreRejection(fetch); // awaited below in order; handled here in case the consumer stops early
          ahead.push(fetch);
          held.push(bytes);
        }
        const chunk = await ahead.shift()!;
        this.memory?.release(held.shift() ?? 0);
        const chunkStart = i * chunkSize;
        const from = Math.max(range.start, chunkStart) - chunkStart;
        const to = Math.min(range.end, chunkStart + chunk.length) - chunkStart;
        yield chunk.subarray(from, to);
      }
    } finally {
      ahead.length = 0;
      for (const bytes of held.splice(0)) this.memory?.release(bytes);
    }
  }

  /**
   * Tells the store which chunks a sequential reader reads next, from
   * `index` on, once per PREFETCH_HINT_CHUNKS: a pack store then looks up
   * where they are in one go instead of once a chunk.
   */
  #hintAhead(index: number): void {
    const prefetch = this.store.prefetch;
    if (prefetch === undefined || (index >= this.#hinted.from && index < this.#hinted.to)) return;
    const to = Math.min(this.header.chunkCount, index + PREFETCH_HINT_CHUNKS);
    this.#hinted = { from: index, to };
    const addresses: ChunkAddress[] = [];
    for (let i = index; i < to; i++) addresses.push(addressAt(this.addresses, i));
    prefetch.call(this.store, addresses);
  }

  /** Chunk `index` through the LRU; the fetch itself takes no caller signal, since several callers may share it. */
  #cached(index: number): CachedChunk {
    let entry = this.#cache.get(index);
    if (entry !== undefined) {
      this.#cache.delete(index);
      this.#cache.set(index, entry);
      readCache.touch(entry);
      return entry;
    }
    entry = this.#fetchCached(index);
    this.#cache.set(index, entry);
    const stored = entry;
    entry.bytes.catch(() => this.#uncache(index, stored));
    while (this.#cache.size > READ_CACHE_CHUNKS) {
      const [oldest, chunk] = this.#cache.entries().next().value!;
      this.#uncache(oldest, chunk);
    }
    // Last, so that a chunk this evicts from another reader is not this one.
    readCache.add(stored, this.header.chunkSize + GCM_TAG_BYTES, () => this.#uncache(index, stored));
    return entry;
  }

  /**
   * A fetch for the cache: into a reused shared-memory slot when the store
   * can read into one (getInto) and the chunk is big enough to be checked
   * and opened on an offload thread; else as stream() fetches.
   *
   * Why: a download of 1 GiB allocated three 1 MiB ArrayBuffers a chunk (the
   * store's read, and the chunk back from the thread twice), each dead a few
   * milliseconds later, and V8 starts a full mark-compact each time such
   * memory grows by some 64 MiB. Measured with OpenSSH's sftp getting 1 GiB
   * from a demo gateway, builds alternated, 2 rounds of 2 warm gets each
   * (with copy-bytes.ts, which the copy out of a slot needs): 27–36
   * mark-compacts a get before, 0–6 after; the event loop's CPU 3.92–4.43 s
   * before, 2.38–2.86 s after; 188–220 MB/s before, 239–267 after.
   */
  #fetchCached(index: number): CachedChunk {
    const sealedLength = chunkLength(this.header, index) + GCM_TAG_BYTES;
    const getInto = this.store.getInto?.bind(this.store);
    if (getInto === undefined || sealedLength < OFFLOAD_MIN_BYTES) return new CachedChunk(this.#fetch(index, {}));
    const slot = takeSlot(this.header.chunkSize + GCM_TAG_BYTES);
    return new CachedChunk(this.#fetchInto(index, slot.bytes.subarray(0, sealedLength), getInto), slot);
  }

  async #fetchInto(index: number, target: Uint8Array, getInto: NonNullable<ChunkStore['getInto']>): Promise<Uint8Array> {
    const address = addressAt(this.addresses, index);
    const sealed = await getInto(address, target);
    // Longer than the file's chunk (undefined) or shorter: not this chunk.
    if (sealed === undefined || sealed.length !== target.length) throw new IntegrityError(address.toString(), 'chunk');
    return this.#open(address, () => openConvergentShared(this.#key(index), sealed));
  }

  async #fetch(index: number, options: AbortOptions): Promise<Uint8Array> {
    const address = addressAt(this.addresses, index);
    const sealed = await this.store.get(address, options);
    const expected = chunkLength(this.header, index);
    if (sealed.length !== expected + GCM_TAG_BYTES) throw new IntegrityError(address.toString(), 'chunk');
    // The store gave us its bytes to keep (ChunkStore's contract): decrypt where they lie.
    return this.#open(address, () => openConvergentOwned(this.#key(index), sealed));
  }

  #key(index: number): Uint8Array {
    return this.keys.subarray(index * CHUNK_KEY_BYTES, (index + 1) * CHUNK_KEY_BYTES);
  }

  /** Runs `open`; a wrong tag is the chunk's IntegrityError. */
  async #open(address: ChunkAddress, open: () => Promise<Uint8Array>): Promise<Uint8Array> {
    try {
      return await open();
    } catch (err) {
      if (err instanceof AeadError) throw new IntegrityError(address.toString(), 'chunk');
      throw err;
    }
  }
}

/**
 * A chunk in read()'s cache. When its bytes lie in a shared-memory slot
 * (chunk-slots.ts), the slot goes back to the pool, for another chunk, only
 * once all three hold: the fetch has settled (neither the store nor an
 * offload thread writes it any more), the cache has dropped the chunk, and
 * no read is copying out of it. A read may resume after another read has
 * evicted the chunk it waited for, so dropping alone is not enough.
 */
class CachedChunk {
  #users = 0;
  #settled = false;
  #dropped = false;

  constructor(
    readonly bytes: Promise<Uint8Array>,
    private slot?: ChunkSlot | undefined,
  ) {
    const settle = (): void => {
      this.#settled = true;
      this.#release();
    };
    bytes.then(settle, settle);
  }

  /** A read copies out of it: the slot stays until done(). */
  use(): this {
    this.#users++;
    return this;
  }

  done(): void {
    this.#users--;
    this.#release();
  }

  /** Out of the cache. */
  drop(): void {
    this.#dropped = true;
    this.#release();
  }

  #release(): void {
    if (this.slot === undefined || !this.#settled || !this.#dropped || this.#users > 0) return;
    giveSlot(this.slot);
    this.slot = undefined;
  }
}
