import { ConflictError, throwIfAborted, type AbortOptions } from '../../errors.js';
import { checkStorageIndex, checkSwap, storageIndexHex } from './slot-limits.js';
import type { SlotEntry, SlotStore } from './slot-store.js';

/**
 * A real slot store in process memory. compareAndSwap reads, checks and
 * writes without an await in between, so it is atomic against every other
 * call in the process with no lock. Records are copied in and out.
 */
export class MemorySlotStore implements SlotStore {
  /** hex storage index → entry */
  private readonly slots = new Map<string, SlotEntry>();

  async get(storageIndex: Uint8Array, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    throwIfAborted(options.signal);
    checkStorageIndex(storageIndex);
    const entry = this.slots.get(storageIndexHex(storageIndex));
    return entry && { seq: entry.seq, record: Uint8Array.from(entry.record) };
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    checkSwap(storageIndex, expectedSeq, next);
    const key = storageIndexHex(storageIndex);
    const current = this.slots.get(key);
    if ((current?.seq ?? null) !== expectedSeq) {
      throw new ConflictError(`slot ${key} is not at the expected seq`);
    }
    this.slots.set(key, { seq: next.seq, record: Uint8Array.from(next.record) });
  }

  async *list(options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    throwIfAborted(options.signal);
    for (const key of this.slots.keys()) {
      throwIfAborted(options.signal);
      yield new Uint8Array(Buffer.from(key, 'hex'));
    }
  }

  async close(): Promise<void> {}
}
