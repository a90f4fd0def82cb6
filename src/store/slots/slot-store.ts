import type { AbortOptions } from '../../errors.js';

/**
 * A slot: the mutable pointer to a directory's newest version.
 * The store keeps opaque signed records; it is trusted no more than a chunk
 * store (readers verify the signature inside `record`, see src/tree), so the
 * store can at worst withhold or roll back, never forge.
 */
export interface SlotEntry {
  /** Sequence number of the version in `record`; strictly increasing per slot. */
  seq: bigint;
  /** The signed slot record bytes (layout in docs/spec/slots.md). */
  record: Uint8Array;
}

/**
 * Mutable slots keyed by a storage index (32 bytes, derived from a directory's
 * verify key; never a secret).
 *
 * Contract (every implementation MUST, and test/conformance/slot-store.ts checks):
 * - get MUST return undefined for a slot never written.
 * - compareAndSwap MUST atomically replace the slot only if its current seq
 *   equals `expectedSeq` (`null` meaning "the slot does not exist yet") and
 *   `next.seq > expectedSeq`; otherwise it MUST throw ConflictError and change
 *   nothing. Of N concurrent swaps from the same expectedSeq exactly one wins.
 * - a successful compareAndSwap MUST be durable when it resolves (a crash after
 *   it resolves never loses it, a crash before never half-applies it).
 * - get after a successful compareAndSwap (from any client of the same store)
 *   MUST return the new entry.
 * - every method honours `signal` and throws AbortError once it is aborted.
 * - a storage index that is not STORAGE_INDEX_BYTES long, a seq outside
 *   [0, 2^64) or a record longer than MAX_SLOT_RECORD_BYTES (all in
 *   slot-limits.ts) MUST be rejected with InvalidInputError, changing nothing.
 * - records are copied in and out: changing a buffer after compareAndSwap, or
 *   one get returned, MUST NOT change what a later get returns.
 */
export interface SlotStore {
  get(storageIndex: Uint8Array, options?: AbortOptions): Promise<SlotEntry | undefined>;
  compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options?: AbortOptions): Promise<void>;
  /** Every storage index with a slot, for gc and check. */
  list(options?: AbortOptions): AsyncIterable<Uint8Array>;
  /** Present when the store keeps the versions snapshots need (docs/spec/snapshots.md). */
  readonly history?: SlotHistory | undefined;
  close(): Promise<void>;
}

/** A snapshot's point in a store's history (docs/spec/snapshots.md, Epochs). */
export interface SnapshotPin {
  /** Storage index of the directory the snapshot is of. */
  root: Uint8Array;
  /** From the store's epoch counter: 1 .. 2^64 - 1. */
  epoch: bigint;
  /** When it was taken, milliseconds since 1970, by the taker's clock. */
  createdMs: number;
}

/**
 * Slot history for snapshots. Contract (docs/spec/snapshots.md, Store rules;
 * test/conformance/slot-store.ts checks):
 * - pin MUST return an epoch above every swap that resolved before the call
 *   and below every swap that resolves after it resolved, and MUST be
 *   durable, together with every version a reader at it needs, when it
 *   resolves.
 * - a swap replacing a version of epoch e MUST keep it while a pin E ≥ e exists;
 *   prune MUST drop only versions no pin covers.
 * - getAt MUST throw NotFoundError for an epoch no pin has, and otherwise
 *   return the version with the largest epoch ≤ E (undefined: none).
 * - pins lists one root's pins (or every pin), oldest first.
 */
export interface SlotHistory {
  pin(root: Uint8Array, createdMs: number, options?: AbortOptions): Promise<SnapshotPin>;
  /** Removes a pin; false if there was no such pin. What only it kept goes at the next prune. */
  unpin(root: Uint8Array, epoch: bigint, options?: AbortOptions): Promise<boolean>;
  /** Drops every kept version no pin covers any more; returns how many. */
  prune(options?: AbortOptions): Promise<number>;
  pins(root: Uint8Array | undefined, options?: AbortOptions): AsyncIterable<SnapshotPin>;
  getAt(storageIndex: Uint8Array, epoch: bigint, options?: AbortOptions): Promise<SlotEntry | undefined>;
}
