import { LITERAL_MAX_BYTES, FileReadCap, LiteralCap } from '../../cap/index.js';
import { sha256 } from '../../crypto/index.js';
import { AbortError, InvalidInputError, UnsupportedError, throwIfAborted, type AbortOptions } from '../../errors.js';
import { addressOf, isChunkAddress } from '../../store/address.js';
import type { ChunkAddress, ChunkStore } from '../../store/chunks/chunk-store.js';
import type { ChecksumAlgorithm, Checksums, FileWriter, UploadResult } from '../api.js';
import { abortable, anySignal } from './abortable.js';
import {
  ADDRESS_BYTES,
  ALL_CHECKSUMS,
  CHECKSUM_MD5,
  CHECKSUM_SHA1,
  CHUNK_KEY_BYTES,
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  checksumSetOf,
  deriveManifestKey,
  deriveVerifyKey,
  isValidChunkSize,
  maxFileSize,
} from './format.js';
import { checksumsOf } from './checksums.js';
import { ChunkSealer } from './chunk-sealer.js';
import { checksumsSet, encodeManifest } from './manifest.js';
import { ChunkBuffer, GCM_TAG_BYTES } from './chunk-buffer.js';
import { giveSlot, takeSlot, type ChunkSlot } from './chunk-slots.js';
import { GrowableBytes } from './growable-bytes.js';
import { SealSession } from './seal-pool.js';
import type { MemoryBudget } from '../../util/memory-budget.js';

export interface FileWriterOptions {
  /** Plaintext bytes per chunk, in [MIN_CHUNK_SIZE, MAX_CHUNK_SIZE]; default DEFAULT_CHUNK_SIZE. */
  chunkSize?: number | undefined;
  /** Chunk puts in flight at once, 1..64; default 4. */
  concurrency?: number | undefined;
  /**
   * Hash and seal chunks on the worker pool (seal-pool.ts) once the file
   * outgrows one chunk; default true. False keeps all work on the calling
   * thread (same bytes either way).
   */
  offload?: boolean | undefined;
  /**
   * The whole-file digests the manifest records; MUST include sha256.
   * Default all three (a v1 manifest); a smaller set writes manifest v2.
   */
  checksums?: readonly ChecksumAlgorithm[] | undefined;
  /**
   * The gateway's memory budget: every chunk in flight beyond the first
   * takes its two chunk-sized buffers from it (tryAcquire), given back when
   * its put settles; refused, the writer waits for its own put instead.
   * None: up to `concurrency` in flight whatever the gateway holds.
   */
  memory?: MemoryBudget | undefined;
}

export const DEFAULT_CONCURRENCY = 4;

/**
 * A literal file's upload reports the same digests a stored one would
 * record (its reader can still compute all three later): what an upload
 * hands on, to events for one, follows [storage] checksums whatever the size.
 */
function onlyRecorded(sums: Checksums, m: number): Checksums {
  const out: Checksums = { sha256: sums.sha256 };
  if (m & CHECKSUM_MD5 && sums.md5 !== undefined) out.md5 = sums.md5;
  if (m & CHECKSUM_SHA1 && sums.sha1 !== undefined) out.sha1 = sums.sha1;
  return out;
}
const MAX_CONCURRENCY = 64;

type State = 'open' | 'finishing' | 'done' | 'aborted';

/**
 * The streaming CHK writer (format: format.ts, manifest.ts, docs/spec/files.md).
 *
 * Memory bound: at most 2 × concurrency + 2 chunk-sized buffers: the
 * plaintext buffer being filled, up to `concurrency` chunks in flight (a
 * place among them is taken before sealing and held through the put), each
 * as plaintext and ciphertext at once while it is sealed and as ciphertext
 * through its put, and one spare plaintext buffer; plus the manifest lists,
 * 68 bytes per chunk (≤ 16 MiB, see MAX_CHUNK_COUNT). The buffers of a file
 * that outgrows one chunk are shared-memory slots (chunk-slots.ts), reused
 * from file to file rather than allocated. With a memory budget
 * (options.memory) only the first chunk in flight is the writer's own: its
 * guaranteed minimum is three chunk-sized buffers (the one being filled or
 * the spare, and the one in flight as plaintext and as ciphertext), and each
 * further chunk in flight holds 2 × (chunk + 16) bytes of the budget, given
 * back when its put settles. A refusal never blocks anyone: the writer then
 * waits for its own put, which needs nothing. write() waits for a free place
 * before cutting a chunk, which is the backpressure: a fast sender waits for
 * the store (or the seal workers) instead of growing memory.
 *
 * Where the CPU goes: a file that fits in one chunk is hashed and sealed
 * here, on the calling thread (no worker round trip for small files). Once
 * a first full chunk is cut, the file gets a session on the seal pool
 * (seal-pool.ts): one worker thread reads each chunk from its slot, updates
 * the whole-file SHA-256 (and MD5, SHA-1 if recorded), derives the chunk key and writes the
 * sealed chunk into a second slot, which goes to the store. Same bytes
 * either way (options.offload = false forces the inline path).
 *
 * write() copies its bytes before it resolves, so the caller may reuse its
 * buffer then. A caller's signal that fires before a write begins rejects
 * just that call; one that fires while a write waits (its bytes half
 * accepted) ends the writer, like a failed put. A write past
 * maxFileSize(chunkSize) is UnsupportedError and leaves the writer usable.
 *
 * Write order: chunks (in parallel) and the manifest, which starts once
 * every chunk put has resolved, or, when the chunks' addresses are known
 * before their puts resolve (sealed on this thread), alongside them; the cap
 * is returned only once all have resolved, so a directory entry (the
 * caller's job) can only ever point at a complete file.
 */
export class ChunkedFileWriter implements FileWriter {
  readonly #store: ChunkStore;
  readonly #convergence: Uint8Array;
  readonly #chunkSize: number;
  readonly #concurrency: number;
  readonly #maxSize: number;
  /** The checksum set m (format.ts) this writer records. */
  readonly #checksums: number;
  #size = 0;
  #state: State = 'open';
  #failure: unknown;
  /** Aborts puts in flight when the writer is aborted or a put fails. */
  readonly #controller = new AbortController();
  /** Serializes write() and finish(), so overlapping calls keep their order. */
  #queue: Promise<unknown> = Promise.resolve();

  /** The plaintext chunk being filled (chunk-buffer.ts). */
  readonly #chunk: ChunkBuffer;
  readonly #offload: boolean;
  /** Opened when the first full chunk is cut; hashes and seals every chunk of this file, in order. */
  #session: SealSession | undefined;
  /** Hashes and seals the chunks sealed inline (offload off, or a single-chunk file). */
  #sealer: ChunkSealer | undefined;
  #chunkCount = 0;
  #addresses = new GrowableBytes(ADDRESS_BYTES);
  #keys = new GrowableBytes(CHUNK_KEY_BYTES);
  readonly #inFlight = new Set<Promise<void>>();
  readonly #memory: MemoryBudget | undefined;

  constructor(store: ChunkStore, convergence: Uint8Array, options: FileWriterOptions = {}) {
    if (convergence.length !== 32) throw new RangeError('convergence secret must be 32 bytes');
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!isValidChunkSize(chunkSize)) {
      throw new RangeError(`chunk size must be an integer in [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}]`);
    }
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(`concurrency must be an integer in [1, ${MAX_CONCURRENCY}]`);
    }
    this.#checksums = options.checksums === undefined ? ALL_CHECKSUMS : checksumSetOf(options.checksums);
    this.#store = store;
    this.#convergence = new Uint8Array(convergence);
    this.#chunkSize = chunkSize;
    this.#concurrency = concurrency;
    this.#maxSize = maxFileSize(chunkSize);
    this.#offload = options.offload ?? true;
    this.#chunk = new ChunkBuffer(chunkSize, this.#offload);
    this.#memory = options.memory;
  }

  get size(): number {
    return this.#size;
  }

  write(data: Uint8Array, options: AbortOptions = {}): Promise<void> {
    return this.#serialize(() => this.#ingest(data, options.signal));
  }

  finish(options: AbortOptions = {}): Promise<UploadResult> {
    return this.#serialize(() => this.#finish(options.signal));
  }

  abort(): void {
    if (this.#state === 'done' || this.#state === 'aborted') return;
    this.#state = 'aborted';
    this.#controller.abort();
    this.#release();
  }

  #serialize<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Throws if the writer can no longer accept work: aborted, failed, or finished. */
  #checkUsable(): void {
    if (this.#state === 'aborted') throw new AbortError('the file writer was aborted');
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state !== 'open') throw new InvalidInputError('the file writer is already finishing or finished');
  }

  async #ingest(data: Uint8Array, signal: AbortSignal | undefined): Promise<void> {
    this.#checkUsable();
    throwIfAborted(signal);
    if (this.#size + data.length > this.#maxSize) {
      throw new UnsupportedError(`files over ${this.#maxSize} bytes need a larger chunk size (manifest limit)`);
    }
    // From here on a failure leaves bytes half-accepted, so it ends the writer.
    try {
      this.#size += data.length;
      let offset = 0;
      while (offset < data.length) {
        offset += this.#chunk.append(data.subarray(offset), this.#session !== undefined);
        if (this.#chunk.full) await this.#sealAndPut(signal);
      }
    } catch (err) {
      this.#failWith(err);
      throw this.#failure ?? err;
    }
  }

  async #finish(signal: AbortSignal | undefined): Promise<UploadResult> {
    this.#checkUsable();
    throwIfAborted(signal);
    this.#state = 'finishing';
    try {
      if (this.#size <= LITERAL_MAX_BYTES) {
        // No chunk was ever cut: the first chunk is cut at ≥ MIN_CHUNK_SIZE > 64 bytes.
        const data = new Uint8Array(this.#chunk.filled ?? []);
        this.#done();
        return { cap: new LiteralCap(data), size: data.length, checksums: onlyRecorded(checksumsOf(data), this.#checksums) };
      }
      if (this.#chunk.fill > 0) await this.#sealAndPut(signal);
      let checksums: Checksums;
      if (this.#session !== undefined) {
        // Queued behind every seal of this session on its worker, so it digests the whole file.
        checksums = await abortable(this.#session.finish(), anySignal(signal, this.#controller.signal));
      } else {
        checksums = this.#sealer!.finish();
      }
      // Chunks sealed here have their addresses already (#sealAndPut), so the
      // manifest's put can overlap theirs: nothing references the manifest
      // until our caller links the cap, after finish() has seen both land.
      // A small file saves one store round trip. The seal pool's addresses
      // come from the store, so those chunks must land first.
      const addressesKnown = this.#session === undefined;
      const allChunksStored = async (): Promise<void> => {
        while (this.#inFlight.size > 0) await this.#waitForPut(signal);
        this.#throwIfFailed();
      };
      if (!addressesKnown) await allChunksStored();

      const header = { chunkSize: this.#chunkSize, size: this.#size, chunkCount: this.#chunkCount };
      const manifestKey = deriveManifestKey(this.#convergence, this.#size, this.#chunkSize, checksums.sha256, checksumsSet(checksums));
      const manifest = encodeManifest(manifestKey, deriveVerifyKey(manifestKey), {
        header,
        addresses: this.#addresses.bytes(this.#chunkCount),
        keys: this.#keys.bytes(this.#chunkCount),
        checksums,
      });
      const manifestStored = abortable(
        this.#store.put(manifest, { signal: anySignal(signal, this.#controller.signal) }),
        this.#controller.signal,
      );
      await Promise.all([manifestStored, addressesKnown ? allChunksStored() : undefined]);
      this.#throwIfFailed();
      const cap = new FileReadCap(manifestKey, sha256(manifest), this.#size);
      this.#done();
      return { cap, size: this.#size, checksums };
    } catch (err) {
      this.#failWith(err);
      throw this.#failure ?? err;
    }
  }

  /**
   * Once a place among the `concurrency` in flight is free, seals the
   * buffered chunk and starts its put; the place covers sealing and the put.
   * On the worker pool (every chunk of a file that outgrew one chunk) the
   * chunk's slot goes to the worker, the ciphertext comes back in a second
   * slot held until the put settles, and the next chunk is filled in the
   * spare or a new slot; inline (a single-chunk file) it is sealed here.
   */
  async #sealAndPut(signal: AbortSignal | undefined): Promise<void> {
    const borrowed = await this.#placeInFlight(signal);
    const index = this.#chunkCount++;
    this.#addresses.reserve(index);
    this.#keys.reserve(index);
    let sealing: Promise<{ key: Uint8Array; sealed: Uint8Array; output?: ChunkSlot }>;
    let expected: ChunkAddress | undefined;
    if (this.#offload && (this.#session !== undefined || this.#chunk.full)) {
      this.#session ??= new SealSession(this.#convergence, this.#checksums);
      const { slot: input, length } = this.#chunk.takeForSealing();
      const output = takeSlot(this.#chunk.slotSize);
      // Each slot goes back only once the worker is done with it (the request settled).
      sealing = this.#session.seal(input, length, output).then(
        (key) => {
          this.#chunk.returnSlot(input, this.#state === 'open' && this.#failure === undefined);
          return { key, sealed: output.bytes.subarray(0, length + GCM_TAG_BYTES), output };
        },
        (err: unknown) => {
          giveSlot(input);
          giveSlot(output);
          throw err;
        },
      );
    } else {
      const plaintext = this.#chunk.filled!;
      // Sealed at finish as the first chunk: the file never outgrew it, so it is the only one.
      const only = index === 0 && this.#state === 'finishing';
      const { key, sealed } = (this.#sealer ??= new ChunkSealer(this.#convergence, { checksums: this.#checksums })).seal(
        plaintext,
        undefined,
        only,
      );
      // Known now, so that finish() can write the manifest while this put runs.
      expected = addressOf(sealed);
      this.#keys.set(index, key);
      this.#addresses.set(index, expected.bytes);
      sealing = Promise.resolve({ key, sealed });
      this.#chunk.clear();
    }
    const put = sealing
      .then(({ key, sealed, output }) => {
        this.#keys.set(index, key);
        if (this.#controller.signal.aborted) {
          if (output) giveSlot(output);
          throw new AbortError('the file writer was aborted');
        }
        const putting = this.#store.put(sealed, { signal: this.#controller.signal });
        // The store may read `sealed` until its put settles (an S3 body is streamed).
        return output ? putting.finally(() => giveSlot(output)) : putting;
      })
      .then((address) => {
        if (!isChunkAddress(address)) throw new TypeError('chunk store returned a malformed address');
        if (expected === undefined) this.#addresses.set(index, address.bytes);
        else if (!expected.equals(address)) throw new TypeError('chunk store returned another address than its bytes hash to');
      });
    const tracked: Promise<void> = put
      .catch((err: unknown) => this.#failWith(err))
      .finally(() => {
        this.#inFlight.delete(tracked);
        // After the slots went back (the put's own finally above): the bytes are free now.
        this.#memory?.release(borrowed);
      });
    this.#inFlight.add(tracked);
  }

  /**
   * Waits for a place among the `concurrency` in flight; the first one is
   * the writer's own, each further one is taken from the memory budget if it
   * has room (answers the bytes taken, to give back when that put settles),
   * else the writer waits for a put of its own, which needs nothing.
   */
  async #placeInFlight(signal: AbortSignal | undefined): Promise<number> {
    const cost = 2 * this.#chunk.slotSize;
    for (;;) {
      if (this.#inFlight.size < this.#concurrency) {
        if (this.#inFlight.size === 0 || this.#memory === undefined) {
          this.#throwIfFailed();
          return 0;
        }
        if (this.#memory.tryAcquire(cost)) {
          try {
            this.#throwIfFailed();
          } catch (err) {
            this.#memory.release(cost);
            throw err;
          }
          return cost;
        }
      }
      await this.#waitForPut(signal);
    }
  }

  /** Waits for any put in flight to settle (they never reject: failures are recorded). */
  async #waitForPut(signal: AbortSignal | undefined): Promise<void> {
    await abortable(Promise.race(this.#inFlight), anySignal(signal, this.#controller.signal));
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#state === 'aborted') throw new AbortError('the file writer was aborted');
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Records the first failure and stops the other puts. A caller's signal
   * firing mid-write counts: bytes were half accepted, the writer cannot go on.
   */
  #failWith(err: unknown): void {
    if (this.#state === 'aborted' || this.#state === 'done') return;
    if (this.#failure === undefined) {
      this.#failure = err;
      this.#controller.abort();
      this.#release();
    }
  }

  #done(): void {
    this.#state = 'done';
    this.#release();
  }

  #release(): void {
    this.#session?.close();
    this.#chunk.release();
    this.#addresses = new GrowableBytes(ADDRESS_BYTES);
    this.#keys = new GrowableBytes(CHUNK_KEY_BYTES);
  }
}
