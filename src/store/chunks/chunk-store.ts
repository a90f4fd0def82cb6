import type { CID } from 'multiformats/cid';
import type { AbortOptions } from '../../errors.js';

/**
 * A chunk's address: CIDv1, raw codec (0x55), sha2-256 multihash of the
 * ciphertext bytes. Stores only ever see ciphertext.
 */
export type ChunkAddress = CID;

/** What a backend can do, so the conformance suite skips only what is declared unsupported. */
export interface ChunkStoreFeatures {
  /** delete() removes chunks (false for append-only/WORM backends). */
  delete: boolean;
  /** list() enumerates every stored chunk. */
  list: boolean;
}

/** What compact() did (or, dry, would do). */
export interface CompactResult {
  /** Packs whose live objects were copied into new packs, then deleted. */
  rewritten: number;
  /** Packs deleted outright: nothing in them was live. */
  removed: number;
  /** Live bytes copied. */
  copiedBytes: number;
  /** File bytes given back. */
  freedBytes: number;
}

export interface CompactOptions extends AbortOptions {
  dryRun?: boolean | undefined;
  /** Rewrite a pack when less than this share of its bytes is live (0..1; default 0.5). */
  threshold?: number | undefined;
}

/** What repack() did (or, dry, would do). */
export interface RepackResult {
  /** Objects of the older layout copied into the current one, then removed there. */
  moved: number;
  movedBytes: number;
  /** Copies in the older layout of objects the current one already held: removed, nothing copied. */
  dropped: number;
  /** Objects left where they are: a put of the same bytes was in flight, or they failed their check. */
  skipped: number;
  /** Of the skipped: objects whose bytes failed their address check (bit rot; `capstan check` names the files). */
  damaged: number;
}

export interface RepackOptions extends AbortOptions {
  /** Count what would move (sizes from stat, no bytes read or checked). */
  dryRun?: boolean | undefined;
  /**
   * Stop once about this many objects were moved or dropped: a long repack
   * taken in steps (the node socket bounds each request's time). A step that
   * moves and drops nothing has walked everything left.
   */
  limit?: number | undefined;
}

export interface PutOptions extends AbortOptions {
  /**
   * A hint: these bytes cannot be stored already (a directory node sealed
   * under a fresh random nonce), so a store that deduplicates may skip
   * looking for a copy. Never changes the result, only the cost.
   */
  unique?: boolean | undefined;
}

/** What stat() tells about one stored chunk. */
export interface ChunkStat {
  bytes: number;
  /** Milliseconds since the epoch of the last put of these bytes. */
  lastPutMs: number;
}

/**
 * The one interface between capstan and wherever chunk bytes live.
 *
 * Contract (every implementation MUST, and test/conformance/chunk-store.ts checks):
 * - put MUST compute the address itself from the bytes, store them, and return
 *   it; it MUST be idempotent (putting the same bytes twice is a no-op that
 *   returns the same address) and atomic (a reader never sees a partial chunk,
 *   even after a crash mid-put). It MUST be durable when it resolves, unless
 *   the store has flush(): then once a later flush() resolves.
 * - get MUST throw NotFoundError for a missing address, and MUST re-hash what
 *   it read and throw IntegrityError (naming the address) when the bytes do
 *   not match; a short read MUST be an IntegrityError too, never a short result.
 * - has MUST NOT throw for a missing address; it answers false.
 * - delete MUST be idempotent (deleting a missing chunk is not an error).
 * - list yields every stored address once, in no particular order.
 * - put MUST reject bytes longer than MAX_CHUNK_BYTES (src/store/address.ts)
 *   with InvalidInputError; get, has and delete MUST reject an address that is
 *   not CIDv1/raw/sha2-256 with InvalidInputError (see assertChunkAddress).
 * - the store MUST own its bytes: changing the buffer passed to put, or the
 *   one get returned, MUST NOT change what a later get returns.
 * - every method honours `signal` and throws AbortError once it is aborted.
 * - transient backend failures surface as TransientError; everything else that
 *   is not one of the typed errors is a bug.
 */
export interface ChunkStore {
  readonly features: ChunkStoreFeatures;
  put(bytes: Uint8Array, options?: PutOptions): Promise<ChunkAddress>;
  get(address: ChunkAddress, options?: AbortOptions): Promise<Uint8Array>;
  has(address: ChunkAddress, options?: AbortOptions): Promise<boolean>;
  /**
   * Optional, for readers that reuse their buffers (src/tree/file/reader.ts):
   * get, with the bytes written into the start of `target` instead of a new
   * buffer, and checked there. Answers the view of `target` that holds them,
   * or undefined when the chunk is longer than `target` (call get). Errors
   * are get's: NotFoundError, IntegrityError (a short read included),
   * AbortError, TransientError. A store that offers it MUST NOT touch
   * `target` once the call has settled; the caller MUST NOT either while it
   * runs. For a view into shared memory the address check may run on
   * another thread, where the bytes lie (src/crypto/offload.ts).
   */
  getInto?(address: ChunkAddress, target: Uint8Array, options?: AbortOptions): Promise<Uint8Array | undefined>;
  /**
   * Optional, a hint from a sequential reader: these chunks will be read
   * soon, about in this order. A store may look up where they are in one
   * go (packs: one index getMany instead of a lookup a chunk). It MUST NOT
   * change what any call answers: a hinted chunk deleted meanwhile is
   * NotFoundError as before, one put meanwhile is found. It never throws
   * and needs no waiting for; addresses that are not chunk addresses are
   * ignored.
   */
  prefetch?(addresses: readonly ChunkAddress[]): void;
  delete(address: ChunkAddress, options?: AbortOptions): Promise<void>;
  list(options?: AbortOptions): AsyncIterable<ChunkAddress>;
  /**
   * Optional, for gc (src/gc): a stored chunk's size and when it was last
   * put, or undefined when it is absent. A backend that offers it MUST
   * refresh `lastPutMs` on every put, including a put of bytes already
   * stored (dedup), so that a chunk an upload in flight relies on is never
   * older than the gc grace period.
   */
  stat?(address: ChunkAddress, options?: AbortOptions): Promise<ChunkStat | undefined>;
  /**
   * Optional, for gc: deletes the chunk only if no put touched it at or after
   * `cutoffMs`, atomically with respect to a concurrent put of the same bytes
   * (after a put has resolved, the chunk MUST be there). Answers the bytes
   * freed, or undefined when the chunk was kept or absent.
   */
  deleteIfIdleSince?(address: ChunkAddress, cutoffMs: number, options?: AbortOptions): Promise<number | undefined>;
  /**
   * For stores whose puts are not durable one by one (packs, docs/spec/packs.md):
   * resolves once every put that resolved before the call is durable. A
   * store without it makes each put durable before put resolves. Callers
   * that make objects reachable (a slot swap) MUST flush first, or use a
   * slot store that orders itself after the puts (the journal).
   */
  flush?(options?: AbortOptions): Promise<void>;
  /**
   * Optional, for gc of stores that keep objects together (packs): gives
   * back the space of objects deleted before it, by rewriting containers
   * that are mostly garbage. Every object stored before the call stays
   * readable throughout and after.
   */
  compact?(options?: CompactOptions): Promise<CompactResult>;
  /**
   * Optional, for stores that read an older layout through (loose files
   * under packs): moves those objects into the current layout, online.
   * Every object stays readable throughout, and an object's old copy is
   * removed only once its new one is durable and indexed durably.
   */
  repack?(options?: RepackOptions): Promise<RepackResult>;
  /** Bytes stored (ciphertext), if the backend can tell cheaply; used by `capstan status` and benchmarks. */
  usage?(options?: AbortOptions): Promise<{ chunks: number; bytes: number }>;
  close(): Promise<void>;
}
