import { ConflictError, InvalidInputError } from '../../errors.js';
import type { SlotEntry } from './slot-store.js';

/** A storage index is a 32-byte hash of a directory's verify key. */
export const STORAGE_INDEX_BYTES = 32;

/**
 * The largest slot record a store accepts. A record is a signature plus a
 * directory's read/verify material, a few hundred bytes; the bound keeps one
 * misbehaving writer from bloating the slot database or a socket frame.
 */
export const MAX_SLOT_RECORD_BYTES = 64 * 1024;

/** Sequence numbers are unsigned 64-bit so every store can keep them in 8 bytes. */
export const MAX_SLOT_SEQ = 2n ** 64n - 1n;

/** Lower-case hex of a storage index: how stores name a slot in errors and logs (it is not a secret). */
export function storageIndexHex(storageIndex: Uint8Array): string {
  return Buffer.from(storageIndex.buffer, storageIndex.byteOffset, storageIndex.byteLength).toString('hex');
}

export function checkStorageIndex(storageIndex: Uint8Array): void {
  if (!(storageIndex instanceof Uint8Array) || storageIndex.length !== STORAGE_INDEX_BYTES) {
    throw new InvalidInputError(`a storage index is ${STORAGE_INDEX_BYTES} bytes`);
  }
}

function checkSeq(seq: unknown): asserts seq is bigint {
  if (typeof seq !== 'bigint' || seq < 0n || seq > MAX_SLOT_SEQ) {
    throw new InvalidInputError('a slot sequence number is a bigint in [0, 2^64)');
  }
}

/**
 * Everything about a compareAndSwap that can be judged without reading the
 * slot: shapes and bounds (InvalidInputError), and the contract's rule that
 * `next.seq` exceed `expectedSeq` (ConflictError, as the contract says: it is
 * the same "your view is stale" reaction for the caller).
 */
export function checkSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry): void {
  checkStorageIndex(storageIndex);
  if (expectedSeq !== null) checkSeq(expectedSeq);
  checkSeq(next?.seq);
  if (!(next.record instanceof Uint8Array)) throw new InvalidInputError('a slot record is a Uint8Array');
  if (next.record.length > MAX_SLOT_RECORD_BYTES) {
    throw new InvalidInputError(`slot record of ${next.record.length} bytes exceeds ${MAX_SLOT_RECORD_BYTES}`);
  }
  if (expectedSeq !== null && next.seq <= expectedSeq) {
    throw new ConflictError(`slot ${storageIndexHex(storageIndex)}: next seq must exceed the expected seq`);
  }
}

/** Epochs (docs/spec/snapshots.md) share the seq range; 0 marks versions written before history was kept, never a pin. */
export function checkEpoch(epoch: unknown): asserts epoch is bigint {
  if (typeof epoch !== 'bigint' || epoch < 1n || epoch > MAX_SLOT_SEQ) {
    throw new InvalidInputError('a snapshot epoch is a bigint in [1, 2^64)');
  }
}

export function checkCreatedMs(createdMs: unknown): asserts createdMs is number {
  if (!Number.isSafeInteger(createdMs) || (createdMs as number) < 0) {
    throw new InvalidInputError('a snapshot time is a non-negative integer of milliseconds');
  }
}
