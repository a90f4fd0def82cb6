import type { Level } from 'level';
import { IntegrityError, NotFoundError, throwIfAborted, type AbortOptions } from '../../errors.js';
import { decodeSlotValue, encodeSlotValue } from './level-format.js';
import { checkCreatedMs, checkEpoch, checkStorageIndex, STORAGE_INDEX_BYTES, storageIndexHex } from './slot-limits.js';
import { PinSet } from './pin-set.js';
import type { SlotEntry, SlotHistory, SnapshotPin } from './slot-store.js';

type Db = Level<Uint8Array, Uint8Array>;
type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array };

/** Key prefixes and the counter key (docs/spec/snapshots.md, LevelDB layout). */
const COUNTER_KEY = Uint8Array.of(0x63);
const EPOCH_PREFIX = 0x65;
const KEPT_PREFIX = 0x68;
const PIN_PREFIX = 0x6e;
/**
 * Length of a pin or kept-version key (prefix ‖ SI ‖ epoch). The slots share
 * the database as bare 32-byte storage indexes, so a prefix's range also
 * holds every slot whose storage index starts with that byte: the length
 * tells them apart, and a scan of a range skips the slots.
 */
const POINT_KEY_BYTES = 1 + STORAGE_INDEX_BYTES + 8;

const u64 = (n: bigint): Uint8Array => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, false);
  return out;
};
const readU64 = (bytes: Uint8Array, at = 0): bigint =>
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(at, false);

function key(prefix: number, si: Uint8Array, epoch?: bigint): Uint8Array {
  const out = new Uint8Array(1 + STORAGE_INDEX_BYTES + (epoch === undefined ? 0 : 8));
  out[0] = prefix;
  out.set(si, 1);
  if (epoch !== undefined) out.set(u64(epoch), 1 + STORAGE_INDEX_BYTES);
  return out;
}

/**
 * Slot history in the node's LevelDB, for LevelSlotStore and the embedded
 * default's JournalSlotStore (both write slots as 32-byte keys of the same
 * database). Every swap goes through applySwaps, which writes the new
 * version, its epoch, the counter and (when a pin covers it) the replaced
 * version in one batch.
 *
 * Pins live in memory too (loaded at open; one entry per snapshot), so a
 * swap decides what to keep without reading them. Bound: the pins, plus one
 * promise per swap being applied.
 */
export class LevelSlotHistory implements SlotHistory {
  readonly #pins = new PinSet();
  /** Swaps being written, by epoch: a pin waits for those below its own. */
  readonly #applying = new Map<bigint, Promise<unknown>>();
  #epoch: bigint;

  private constructor(
    private readonly db: Db,
    epoch: bigint,
  ) {
    this.#epoch = epoch;
  }

  static async load(db: Db): Promise<LevelSlotHistory> {
    const counter = (await db.get(COUNTER_KEY)) as Uint8Array | undefined;
    const history = new LevelSlotHistory(db, counter === undefined ? 0n : readCounter(counter));
    for await (const [k, value] of db.iterator({ gte: Uint8Array.of(PIN_PREFIX), lt: Uint8Array.of(PIN_PREFIX + 1) })) {
      if (k.length !== POINT_KEY_BYTES) continue;
      history.#pins.add(decodePin(k, value));
    }
    return history;
  }

  /**
   * Writes `next` as the slot's new version (the caller has checked the
   * swap and holds the slot's lock). `sync` as LevelDB's: the journal store
   * leaves it to its journal.
   */
  applySwap(si: Uint8Array, next: SlotEntry, sync: boolean): Promise<void> {
    return this.applySwaps([{ storageIndex: si, entry: next }], sync);
  }

  /**
   * Writes several swaps, in the order given, as one LevelDB batch (the
   * journal store's deferred writes, journal-slot-store.ts): each gets the
   * next epoch, and a version a pin covers is kept even when the swap that
   * replaces it is in the same batch.
   */
  async applySwaps(swaps: readonly { storageIndex: Uint8Array; entry: SlotEntry }[], sync: boolean): Promise<void> {
    if (swaps.length === 0) return;
    // Every epoch is taken before the first await, so a pin orders itself after all of them or none.
    const first = this.#epoch + 1n;
    this.#epoch += BigInt(swaps.length);
    const work = this.#write(swaps, first, sync);
    const epochs = swaps.map((_, i) => first + BigInt(i));
    for (const epoch of epochs) this.#applying.set(epoch, work);
    try {
      await work;
    } finally {
      for (const epoch of epochs) this.#applying.delete(epoch);
    }
  }

  async #write(swaps: readonly { storageIndex: Uint8Array; entry: SlotEntry }[], first: bigint, sync: boolean): Promise<void> {
    const ops: BatchOp[] = [];
    /** What this batch already wrote per slot: the version a later swap of the same slot replaces. */
    const written = new Map<string, { value: Uint8Array; epoch: bigint }>();
    let epoch = first;
    for (const { storageIndex: si, entry } of swaps) {
      const epochKey = key(EPOCH_PREFIX, si);
      const value = encodeSlotValue(entry);
      if (this.#pins.size > 0) {
        const hex = storageIndexHex(si);
        let old = written.get(hex);
        if (old === undefined) {
          const [stored, storedEpoch] = (await this.db.getMany([si, epochKey])) as (Uint8Array | undefined)[];
          if (stored !== undefined) old = { value: stored, epoch: storedEpoch === undefined ? 0n : readU64(storedEpoch) };
        }
        if (old !== undefined && this.#pins.covers(old.epoch, epoch)) {
          ops.push({ type: 'put', key: key(KEPT_PREFIX, si, old.epoch), value: encodeKept(decodeSlotValue(si, old.value), epoch) });
        }
        written.set(hex, { value, epoch });
      }
      ops.push({ type: 'put', key: si, value }, { type: 'put', key: epochKey, value: u64(epoch) });
      epoch++;
    }
    ops.push({ type: 'put', key: COUNTER_KEY, value: u64(epoch - 1n) });
    // Unsynced: no options object (level-index.ts, putMany, says why).
    await (sync ? this.db.batch(ops, { sync }) : this.db.batch(ops));
  }

  async pin(root: Uint8Array, createdMs: number, options: AbortOptions = {}): Promise<SnapshotPin> {
    throwIfAborted(options.signal);
    checkStorageIndex(root);
    checkCreatedMs(createdMs);
    const pin: SnapshotPin = { root: new Uint8Array(root), epoch: ++this.#epoch, createdMs };
    // Known to swaps from now on (they keep what it covers); swaps given a lower epoch are written first.
    this.#pins.add(pin);
    try {
      await Promise.allSettled([...this.#applying.entries()].filter(([e]) => e < pin.epoch).map(([, work]) => work));
      await this.db.batch(
        [
          { type: 'put', key: key(PIN_PREFIX, root, pin.epoch), value: u64(BigInt(createdMs)) },
          { type: 'put', key: COUNTER_KEY, value: u64(pin.epoch) },
        ],
        { sync: true },
      );
    } catch (err) {
      this.#pins.delete(root, pin.epoch);
      throw err;
    }
    return { ...pin, root: new Uint8Array(root) };
  }

  async unpin(root: Uint8Array, epoch: bigint, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    checkStorageIndex(root);
    checkEpoch(epoch);
    if (!this.#pins.delete(root, epoch)) return false;
    await this.db.del(key(PIN_PREFIX, root, epoch), { sync: true });
    return true;
  }

  /** One pass over the kept versions; a version kept by a swap during it is covered by a pin, so never dropped. */
  async prune(options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    let ops: BatchOp[] = [];
    let dropped = 0;
    for await (const [k, value] of this.db.iterator({ gte: Uint8Array.of(KEPT_PREFIX), lt: Uint8Array.of(KEPT_PREFIX + 1) })) {
      throwIfAborted(options.signal);
      if (k.length !== POINT_KEY_BYTES) continue;
      if (this.#pins.covers(readU64(k, 1 + STORAGE_INDEX_BYTES), readU64(value, 8))) continue;
      ops.push({ type: 'del', key: k });
      dropped++;
      if (ops.length >= 1000) {
        await this.db.batch(ops);
        ops = [];
      }
    }
    await this.db.batch(ops, { sync: true });
    return dropped;
  }

  async *pins(root: Uint8Array | undefined, options: AbortOptions = {}): AsyncIterable<SnapshotPin> {
    throwIfAborted(options.signal);
    if (root !== undefined) checkStorageIndex(root);
    yield* this.#pins.list(root);
  }

  async getAt(si: Uint8Array, epoch: bigint, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    throwIfAborted(options.signal);
    checkStorageIndex(si);
    checkEpoch(epoch);
    if (!this.#pins.has(epoch)) throw new NotFoundError('no snapshot at that point');
    // The current version first: a swap replacing it writes the kept copy in the same batch, so
    // if this read sees the newer version, the range read below sees the kept one.
    const [current, currentEpoch] = (await this.db.getMany([si, key(EPOCH_PREFIX, si)])) as (Uint8Array | undefined)[];
    if (current === undefined) return undefined;
    if ((currentEpoch === undefined ? 0n : readU64(currentEpoch)) <= epoch) return decodeSlotValue(si, current);
    for await (const [, value] of this.db.iterator({
      gte: key(KEPT_PREFIX, si, 0n),
      lte: key(KEPT_PREFIX, si, epoch),
      reverse: true,
      limit: 1,
    })) {
      throwIfAborted(options.signal);
      return decodeKept(si, value);
    }
    return undefined;
  }
}

function readCounter(value: Uint8Array): bigint {
  if (value.length !== 8) throw new IntegrityError('slot history counter', 'slot');
  return readU64(value);
}

function encodeKept(entry: SlotEntry, superseded: bigint): Uint8Array {
  const out = new Uint8Array(16 + entry.record.length);
  out.set(u64(entry.seq), 0);
  out.set(u64(superseded), 8);
  out.set(entry.record, 16);
  return out;
}

function decodeKept(si: Uint8Array, value: Uint8Array): SlotEntry {
  if (value.length < 16) throw new IntegrityError(storageIndexHex(si), 'slot');
  return { seq: readU64(value), record: new Uint8Array(value.subarray(16)) };
}

function decodePin(k: Uint8Array, value: Uint8Array): SnapshotPin {
  if (k.length !== POINT_KEY_BYTES || value.length !== 8) throw new IntegrityError('snapshot pin', 'slot');
  return {
    root: new Uint8Array(k.subarray(1, 1 + STORAGE_INDEX_BYTES)),
    epoch: readU64(k, 1 + STORAGE_INDEX_BYTES),
    createdMs: Number(readU64(value)),
  };
}
