import type { Level } from 'level';
import { type AbortOptions, ConflictError, throwIfAborted } from '../../errors.js';
import { decodeSlotValue } from '../slots/level-format.js';
import type { LevelSlotHistory } from '../slots/level-history.js';
import { checkStorageIndex, checkSwap, STORAGE_INDEX_BYTES, storageIndexHex } from '../slots/slot-limits.js';
import type { SlotEntry, SlotHistory, SlotStore } from '../slots/slot-store.js';
import { BoundedCache } from '../../util/bounded-cache.js';
import { KeyedMutex } from '../../util/keyed-mutex.js';
import { slotRecord } from './format.js';
import type { PackChunkStore } from './pack-store.js';

/**
 * The embedded default's slot store: swaps go into the same journal as the
 * objects they make reachable (docs/spec/packs.md, Write order and
 * durability), so one fdatasync makes a whole commit durable.
 *
 * compareAndSwap, under a per-slot lock: compare with the slot's current
 * seq, append a `slot` record to the journal (after every object put
 * before), wait for a sync covering it (the pack store's flushDurable),
 * resolve. A reader sees the new entry only once it is durable. The index
 * entries and this swap are written to LevelDB (unsynced) after that, in
 * journal order, off the swap's path, the swap deferred to be written with
 * others (#deferred); until its write is done the entry is answered from
 * memory (#durable), so get, list and the snapshot history see it from the
 * moment the swap resolves. The LevelDB copy of a slot may lag the journal
 * after a crash; the engine's recovery replays it from every pack not marked
 * applied (local-engine.ts), and a pack is marked only once its swaps are
 * written.
 *
 * LevelDB keys are the raw 32-byte storage indexes, as LevelSlotStore's
 * (values: seq ‖ record), so a node written by an earlier version keeps its
 * slots where they are.
 */
/** Slots whose entry is kept in memory, most recently used: a directory is read far more often than written. */
const CACHED_SLOTS = 4096;
/** Deferred swaps written in one LevelDB batch at most. */
const DEFERRED_SWAPS = 64;

export class JournalSlotStore implements SlotStore {
  readonly #locks = new KeyedMutex();
  /**
   * Recently read or swapped entries, by storage index hex. Coherent because
   * this store is the only writer of its LevelDB while open (the engine
   * owns it; other processes come through the node socket). A slot that is
   * absent is not cached.
   */
  readonly #cache = new BoundedCache<string, SlotEntry>(CACHED_SLOTS);
  /**
   * Swaps that are durable in the journal and not yet written to LevelDB, by
   * storage index hex (the latest per slot). Bound: the deferred swaps
   * (DEFERRED_SWAPS) and those of the syncs whose applies are still running.
   */
  readonly #durable = new Map<string, SlotEntry>();
  readonly #history: SlotHistory;
  /**
   * Durable swaps whose LevelDB write is deferred, in journal order: they
   * are written together, one batch for up to DEFERRED_SWAPS of them or
   * whatever came within `deferMs` (the engine's DEFER_WRITES_MS). Each is
   * answered from #durable until then. Bound: DEFERRED_SWAPS.
   */
  #deferred: { storageIndex: Uint8Array; entry: SlotEntry; applied: () => void }[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #deferMs: number;

  constructor(
    private readonly db: Level<Uint8Array, Uint8Array>,
    private readonly packs: PackChunkStore,
    private readonly kept: LevelSlotHistory,
    options: { deferMs: number },
  ) {
    this.#deferMs = options.deferMs;
    // A snapshot pin orders itself after every swap written to LevelDB before it (level-history.ts):
    // so every swap already resolved must be written first (deferred ones included), or a snapshot
    // taken after an acknowledged upload could miss it. Reads at an epoch see LevelDB, so they wait
    // the same way.
    const settled = (): Promise<void> => this.writeDeferred();
    this.#history = {
      pin: async (root, createdMs, options) => {
        await settled();
        return kept.pin(root, createdMs, options);
      },
      unpin: (root, epoch, options) => kept.unpin(root, epoch, options),
      prune: (options) => kept.prune(options),
      pins: (root, options) => kept.pins(root, options),
      getAt: async (storageIndex, epoch, options) => {
        await settled();
        return kept.getAt(storageIndex, epoch, options);
      },
    };
  }

  get history(): SlotHistory {
    return this.#history;
  }

  async get(storageIndex: Uint8Array, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    throwIfAborted(options.signal);
    checkStorageIndex(storageIndex);
    const key = storageIndexHex(storageIndex);
    const durable = this.#durable.get(key);
    if (durable !== undefined) return { seq: durable.seq, record: new Uint8Array(durable.record) };
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      return { seq: cached.seq, record: new Uint8Array(cached.record) };
    }
    const value = (await this.db.get(storageIndex)) as Uint8Array | undefined;
    throwIfAborted(options.signal);
    if (value === undefined) return undefined;
    const entry = decodeSlotValue(storageIndex, value);
    this.#cache.set(key, { seq: entry.seq, record: new Uint8Array(entry.record) });
    return entry;
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    checkSwap(storageIndex, expectedSeq, next);
    const key = storageIndexHex(storageIndex);
    const si = new Uint8Array(storageIndex);
    await this.#locks.run(key, async () => {
      throwIfAborted(options.signal);
      const current = await this.get(si);
      if ((current?.seq ?? null) !== expectedSeq) throw new ConflictError(`slot ${key} is not at the expected seq`);
      // Refused before its record is appended: a swap reported failed must not become durable later.
      this.packs.throwIfApplyFailed();
      // Past this point the swap goes through even if aborted: a half-known outcome is worse than a late one.
      const appended = this.packs.sink.append(slotRecord(si, next.seq, next.record));
      const entry: SlotEntry = { seq: next.seq, record: new Uint8Array(next.record) };
      let applied = false;
      this.packs.afterSync(appended.seq, async () => {
        this.#deferred.push({
          storageIndex: si,
          entry,
          applied: () => {
            this.#cache.set(key, entry);
            applied = true;
            // A later swap of this slot, durable meanwhile, stays.
            if (this.#durable.get(key) === entry) this.#durable.delete(key);
          },
        });
        if (this.#deferred.length >= DEFERRED_SWAPS) await this.#writeDeferred();
        else this.#timer ??= setTimeout(() => this.packs.applyInBackground(() => this.#writeDeferred()), this.#deferMs).unref();
      });
      // Rejects if the sync failed: then the swap is not durable and never shown.
      await this.packs.flushDurable();
      // The lock is still held, so no later swap of this slot is durable yet.
      if (!applied) this.#durable.set(key, entry);
    });
  }

  async *list(options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    throwIfAborted(options.signal);
    // Durable swaps not yet in LevelDB: a slot made by one of them is listed too, once.
    const unlisted = new Map([...this.#durable.keys()].map((key) => [key, Buffer.from(key, 'hex')]));
    // Slot keys are the 32-byte storage indexes; the object index and the engine's marks share the database.
    for await (const key of this.db.keys()) {
      throwIfAborted(options.signal);
      if (key.length !== STORAGE_INDEX_BYTES) continue;
      unlisted.delete(storageIndexHex(key));
      yield new Uint8Array(key);
    }
    for (const si of unlisted.values()) yield new Uint8Array(si);
  }

  /** Writes the deferred swaps to LevelDB after every apply queued before this call, and waits for all of it. */
  async writeDeferred(): Promise<void> {
    this.packs.applyInBackground(() => this.#writeDeferred());
    await this.packs.settled();
  }

  /**
   * Writes the deferred swaps to LevelDB now. Only from within the pack
   * store's applies (an afterSync effect), which run one at a time and in
   * journal order: the engine's mark of a sealed pack calls it first, so a
   * pack is never marked applied before its swaps are in LevelDB.
   */
  flushDeferred(): Promise<void> {
    return this.#writeDeferred();
  }

  async #writeDeferred(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const swaps = [...this.#deferred];
    if (swaps.length === 0) return;
    await this.kept.applySwaps(swaps, false);
    // Only once written: after a failure they stay, so a pack's mark (or close) tries them again
    // and is never written without them.
    this.#deferred.splice(0, swaps.length);
    for (const swap of swaps) swap.applied();
  }

  /** The engine owns the database and the journal; it closes them (after writeDeferred). */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
  }
}
