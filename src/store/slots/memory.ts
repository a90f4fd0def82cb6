import { ConflictError, NotFoundError, throwIfAborted, type AbortOptions } from '../../errors.js';
import { checkCreatedMs, checkEpoch, checkStorageIndex, checkSwap, storageIndexHex } from './slot-limits.js';
import { PinSet } from './pin-set.js';
import type { SlotEntry, SlotHistory, SlotStore, SnapshotPin } from './slot-store.js';

interface Version extends SlotEntry {
  epoch: bigint;
}

interface Kept extends Version {
  /** Epoch of the version that replaced this one. */
  superseded: bigint;
}

/**
 * A real slot store in process memory, with history for snapshots. Every
 * method reads, checks and writes without an await in between, so each is
 * atomic against every other call in the process with no lock. Records are
 * copied in and out.
 */
export class MemorySlotStore implements SlotStore, SlotHistory {
  /** hex storage index → entry */
  private readonly slots = new Map<string, Version>();
  /** hex storage index → kept versions, oldest first */
  private readonly kept = new Map<string, Kept[]>();
  private readonly pinned = new PinSet();
  private epoch = 0n;

  get history(): SlotHistory {
    return this;
  }

  async get(storageIndex: Uint8Array, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    throwIfAborted(options.signal);
    checkStorageIndex(storageIndex);
    return copy(this.slots.get(storageIndexHex(storageIndex)));
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    checkSwap(storageIndex, expectedSeq, next);
    const key = storageIndexHex(storageIndex);
    const current = this.slots.get(key);
    if ((current?.seq ?? null) !== expectedSeq) {
      throw new ConflictError(`slot ${key} is not at the expected seq`);
    }
    const epoch = ++this.epoch;
    if (current !== undefined && this.pinned.covers(current.epoch, epoch)) {
      const kept = this.kept.get(key) ?? [];
      kept.push({ ...current, superseded: epoch });
      this.kept.set(key, kept);
    }
    this.slots.set(key, { seq: next.seq, record: Uint8Array.from(next.record), epoch });
  }

  async *list(options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    throwIfAborted(options.signal);
    for (const key of this.slots.keys()) {
      throwIfAborted(options.signal);
      yield new Uint8Array(Buffer.from(key, 'hex'));
    }
  }

  async pin(root: Uint8Array, createdMs: number, options: AbortOptions = {}): Promise<SnapshotPin> {
    throwIfAborted(options.signal);
    checkStorageIndex(root);
    checkCreatedMs(createdMs);
    const pin = { root: new Uint8Array(root), epoch: ++this.epoch, createdMs };
    this.pinned.add(pin);
    return pin;
  }

  async unpin(root: Uint8Array, epoch: bigint, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    checkStorageIndex(root);
    checkEpoch(epoch);
    return this.pinned.delete(root, epoch);
  }

  async prune(options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    let dropped = 0;
    for (const [key, kept] of this.kept) {
      const still = kept.filter((v) => this.pinned.covers(v.epoch, v.superseded));
      dropped += kept.length - still.length;
      if (still.length === 0) this.kept.delete(key);
      else this.kept.set(key, still);
    }
    return dropped;
  }

  async *pins(root: Uint8Array | undefined, options: AbortOptions = {}): AsyncIterable<SnapshotPin> {
    throwIfAborted(options.signal);
    if (root !== undefined) checkStorageIndex(root);
    yield* this.pinned.list(root);
  }

  async getAt(storageIndex: Uint8Array, epoch: bigint, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    throwIfAborted(options.signal);
    checkStorageIndex(storageIndex);
    checkEpoch(epoch);
    if (!this.pinned.has(epoch)) throw new NotFoundError('no snapshot at that point');
    const key = storageIndexHex(storageIndex);
    const current = this.slots.get(key);
    if (current !== undefined && current.epoch <= epoch) return copy(current);
    const kept = this.kept.get(key) ?? [];
    return copy(kept.findLast((entry) => entry.epoch <= epoch));
  }

  async close(): Promise<void> {}
}

function copy(entry: SlotEntry | undefined): SlotEntry | undefined {
  return entry && { seq: entry.seq, record: Uint8Array.from(entry.record) };
}
