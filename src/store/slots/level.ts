import { KeyedMutex } from '../../util/keyed-mutex.js';
import { Level } from 'level';
import { ConflictError, throwIfAborted, type AbortOptions } from '../../errors.js';
import { decodeSlotValue } from './level-format.js';
import { LevelSlotHistory } from './level-history.js';
import { checkStorageIndex, checkSwap, STORAGE_INDEX_BYTES, storageIndexHex } from './slot-limits.js';
import type { SlotEntry, SlotHistory, SlotStore } from './slot-store.js';

export { decodeSlotValue, encodeSlotValue } from './level-format.js';

/**
 * Slots in a LevelDB database (classic-level, through `level`).
 *
 * LevelDB has no compare-and-swap, so compareAndSwap holds an in-process lock
 * per storage index across read, compare and write. That is only sound because
 * LevelDB's LOCK file keeps any other process from opening the database: the
 * one process that has it open is the only writer, and other processes reach
 * it through slot-store-socket.ts. Writes use `sync: true`, so a swap is on
 * disk when it resolves.
 *
 * Bound on the lock: one map entry per storage index with a swap in flight,
 * removed when the last one finishes; waiters are the callers themselves.
 */
export class LevelSlotStore implements SlotStore {
  private readonly locks = new KeyedMutex();

  private constructor(
    private readonly db: Level<Uint8Array, Uint8Array>,
    private readonly kept: LevelSlotHistory,
  ) {}

  get history(): SlotHistory {
    return this.kept;
  }

  /**
   * Opens (creating if missing) the database in `dir`. If another process
   * holds it, this rejects with level's error: code 'LEVEL_DATABASE_NOT_OPEN',
   * cause.code 'LEVEL_LOCKED' (see isLevelLocked and src/node/stores.ts).
   */
  static async open(dir: string): Promise<LevelSlotStore> {
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    try {
      return new LevelSlotStore(db, await LevelSlotHistory.load(db));
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  async get(storageIndex: Uint8Array, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    throwIfAborted(options.signal);
    checkStorageIndex(storageIndex);
    const value = (await this.db.get(storageIndex)) as Uint8Array | undefined;
    throwIfAborted(options.signal);
    return value === undefined ? undefined : decodeSlotValue(storageIndex, value);
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    checkSwap(storageIndex, expectedSeq, next);
    const key = storageIndexHex(storageIndex);
    // Copied now: the caller may reuse its buffers while this waits for the lock.
    const si = new Uint8Array(storageIndex);
    const entry = { seq: next.seq, record: new Uint8Array(next.record) };
    await this.locks.run(key, async () => {
      // Checked under the lock: an abort while queued changes nothing.
      throwIfAborted(options.signal);
      const stored = (await this.db.get(storageIndex)) as Uint8Array | undefined;
      const currentSeq = stored === undefined ? null : decodeSlotValue(storageIndex, stored).seq;
      if (currentSeq !== expectedSeq) throw new ConflictError(`slot ${key} is not at the expected seq`);
      // Past this point the swap goes through even if aborted: a half-known
      // outcome is worse than a late one.
      await this.kept.applySwap(si, entry, true);
    });
  }

  async *list(options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    throwIfAborted(options.signal);
    // The iterator reads from a snapshot and is closed by for-await on break. Slot keys are the 32-byte
    // storage indexes; a node of storage engine v3 keeps its object index and marks in the same database.
    for await (const key of this.db.keys()) {
      throwIfAborted(options.signal);
      if (key.length === STORAGE_INDEX_BYTES) yield new Uint8Array(key);
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** True for the error level throws when another process (or handle) holds the database's LOCK. */
export function isLevelLocked(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return e?.code === 'LEVEL_DATABASE_NOT_OPEN' && e.cause?.code === 'LEVEL_LOCKED';
}
