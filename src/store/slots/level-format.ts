import { IntegrityError } from '../../errors.js';
import { storageIndexHex } from './slot-limits.js';
import type { SlotEntry } from './slot-store.js';

/** Bytes of the sequence-number prefix in a stored value. */
const SEQ_BYTES = 8;

/**
 * Slot value layout in LevelDB (format v1):
 *
 *     key   = the 32-byte storage index, raw
 *     value = seq as 8 bytes unsigned big-endian || record bytes (0..64 KiB)
 *
 * The store's seq sits outside the record so compareAndSwap can compare
 * without parsing a record, which belongs to src/tree. A value shorter than
 * 8 bytes cannot have been written by this code: IntegrityError.
 */
export function encodeSlotValue(entry: SlotEntry): Uint8Array {
  const value = new Uint8Array(SEQ_BYTES + entry.record.length);
  new DataView(value.buffer).setBigUint64(0, entry.seq, false);
  value.set(entry.record, SEQ_BYTES);
  return value;
}

export function decodeSlotValue(storageIndex: Uint8Array, value: Uint8Array): SlotEntry {
  if (value.length < SEQ_BYTES) throw new IntegrityError(storageIndexHex(storageIndex), 'slot');
  const seq = new DataView(value.buffer, value.byteOffset, value.byteLength).getBigUint64(0, false);
  // A copy, as a plain Uint8Array: callers own what they get.
  return { seq, record: new Uint8Array(value.subarray(SEQ_BYTES)) };
}
