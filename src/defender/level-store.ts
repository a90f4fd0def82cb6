import { Level } from 'level';
import { InvalidInputError, TransientError, type AbortOptions } from '../errors.js';
import type { ClientRecord } from './policy.js';
import { DEFAULT_MAX_STORED_CLIENTS, MemoryDefenderStore } from './memory-store.js';
import { decodeRecord, encodeRecord } from './record-format.js';
import type { BanEntry, DefenderStore, VersionedRecord } from './store.js';

/**
 * The defender's records in the node directory (`[defender] state_dir`,
 * default store/defender): a LevelDB of its own, so a restart of the one
 * gateway of an embedded node forgives nobody (docs/spec/defender.md).
 *
 * Every record is also held in memory (a MemoryDefenderStore, which decides
 * and bounds everything), loaded at open: at most maxEntries records, the
 * same bound as before. Each write or deletion is then written to LevelDB
 * before the call resolves, in the order made (one batch at a time, every
 * change queued meanwhile in the next batch). Writes are not fsynced: they
 * survive the process being killed, not necessarily a power cut, which can
 * forgive the last moments' failures (scores are not worth a disk flush each).
 *
 * Keys: `c!` + the client key; values: record-format.ts. `format` holds "1".
 * One process at a time (LevelDB's lock): the gateway while it runs.
 */
const CLIENT_PREFIX = 'c!';
const FORMAT_KEY = 'format';
const FORMAT = '1';

type Op = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

export class LevelDefenderStore implements DefenderStore {
  readonly #db: Level<string, string>;
  readonly #memory: MemoryDefenderStore;
  #pending: Op[] = [];
  /** The last batch written or being written; each batch starts after the one before. */
  #written: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  private constructor(db: Level<string, string>, maxEntries: number, initial: [string, VersionedRecord][]) {
    this.#db = db;
    this.#memory = new MemoryDefenderStore(
      {
        maxEntries,
        onChange: (key, value) =>
          this.#pending.push(
            value === undefined
              ? { type: 'del', key: CLIENT_PREFIX + key }
              : { type: 'put', key: CLIENT_PREFIX + key, value: encodeRecord(value) },
          ),
      },
      initial,
    );
  }

  /** Opens (creating) the database in `dir` and loads its records; unreadable ones are dropped. */
  static async open(dir: string, options: { maxEntries?: number } = {}): Promise<LevelDefenderStore> {
    const db = new Level<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    try {
      const format = await db.get(FORMAT_KEY);
      if (format === undefined) await db.put(FORMAT_KEY, FORMAT);
      else if (format !== FORMAT)
        throw new InvalidInputError(`the defender database ${dir} has format ${format}, not ${FORMAT}: upgrade capstan`);
      const initial: [string, VersionedRecord][] = [];
      const unreadable: string[] = [];
      for await (const [key, value] of db.iterator({ gte: CLIENT_PREFIX, lt: CLIENT_PREFIX + '\uffff' })) {
        const decoded = decodeRecord(value);
        if (decoded === undefined) unreadable.push(key);
        else initial.push([key.slice(CLIENT_PREFIX.length), decoded]);
      }
      if (unreadable.length > 0) await db.batch(unreadable.map((key) => ({ type: 'del' as const, key })));
      const maxEntries = options.maxEntries ?? DEFAULT_MAX_STORED_CLIENTS;
      const store = new LevelDefenderStore(db, maxEntries, initial);
      // A smaller max_entries than last run: trim now, least recently seen first.
      await store.sweep(0, maxEntries);
      return store;
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  get(key: string, options?: AbortOptions): Promise<VersionedRecord | undefined> {
    return this.#memory.get(key, options);
  }

  async put(key: string, expectedVersion: number | undefined, record: ClientRecord, options?: AbortOptions): Promise<number> {
    const version = await this.#memory.put(key, expectedVersion, record, options);
    await this.#flush();
    return version;
  }

  async delete(key: string, options?: AbortOptions): Promise<boolean> {
    const deleted = await this.#memory.delete(key, options);
    await this.#flush();
    return deleted;
  }

  bans(now: number, limit: number, options?: AbortOptions): Promise<BanEntry[]> {
    return this.#memory.bans(now, limit, options);
  }

  generation(options?: AbortOptions): Promise<string> {
    return this.#memory.generation(options);
  }

  async sweep(now: number, maxEntries: number, options?: AbortOptions): Promise<number> {
    const deleted = await this.#memory.sweep(now, maxEntries, options);
    await this.#flush();
    return deleted;
  }

  size(options?: AbortOptions): Promise<number> {
    return this.#memory.size(options);
  }

  /** Waits for queued writes, then closes the database. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#flush().catch(() => undefined);
      await this.#db.close();
    })();
    return this.#closing;
  }

  /** Writes every queued change in one batch after the batches before it; resolves when it is written. */
  #flush(): Promise<void> {
    const ops = this.#pending.splice(0);
    if (ops.length === 0) return this.#written;
    const batch = this.#written
      .catch(() => undefined)
      .then(() => this.#db.batch(ops))
      .catch((err: unknown) => {
        throw new TransientError('defender database write failed', { cause: err });
      });
    this.#written = batch;
    return batch;
  }
}
