import type pg from 'pg';
import {
  AbortError,
  ConflictError,
  IntegrityError,
  NotFoundError,
  TransientError,
  throwIfAborted,
  type AbortOptions,
} from '../../../errors.js';
import type { Logger } from '../../../log.js';
import { MAX_SLOT_SEQ, checkCreatedMs, checkEpoch, checkStorageIndex, checkSwap, storageIndexHex } from '../slot-limits.js';
import type { SlotEntry, SlotHistory, SlotStore, SnapshotPin } from '../slot-store.js';
import { classifyPostgresError } from './errors.js';
import { openMigratedPool, quoteSchema, SLOT_STORE_SCHEMA } from './migrations.js';

export interface PostgresSlotStoreOptions {
  /**
   * A libpq-style URL (postgres://user:password@host:port/database?...).
   * Fields it leaves out come from the PG* environment variables, as with
   * psql (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD).
   */
  url?: string | undefined;
  /** Used when the URL carries none (it wins over PGPASSWORD). */
  password?: string | undefined;
  /** SQL schema holding the tables; several stores can share one database under different schemas. Default "public". */
  schema?: string;
  /** Connections in the pool, the bound on concurrent statements. Default 10. */
  poolSize?: number;
  /** How long to wait for a connection (new or from the pool) before TransientError. Default 5000. */
  connectTimeoutMs?: number;
  /** Client-side bound on one statement. Default 15000. */
  statementTimeoutMs?: number;
  logger?: Logger | undefined;
}

export const DEFAULT_POOL_SIZE = 10;
/** Storage indexes fetched per statement by list(): what the iterator holds in memory at once. */
const LIST_PAGE = 256;
/**
 * Statements admitted at once (running or waiting for a pooled connection).
 * pg's own wait queue is unbounded; past this, callers get TransientError at
 * once instead of queueing behind a database that is not keeping up.
 */
export const MAX_PENDING_STATEMENTS = 1024;

/** Resolves as `work` does, or rejects with AbortError once `signal` aborts (the statement itself runs on, harmlessly: only reads use this). */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortError());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** pg returns NUMERIC as a string; anything but a u64 in decimal cannot have come through the table's CHECK. */
function parseSeq(storageIndex: Uint8Array, text: unknown): bigint {
  if (typeof text !== 'string' || !/^[0-9]{1,20}$/.test(text)) throw new IntegrityError(storageIndexHex(storageIndex), 'slot');
  const seq = BigInt(text);
  if (seq > MAX_SLOT_SEQ) throw new IntegrityError(storageIndexHex(storageIndex), 'slot');
  return seq;
}

/**
 * Slots in a PostgreSQL table, shared by any number of gateways.
 *
 * compareAndSwap is one statement, so the database's row lock is the only
 * lock: from null it is `INSERT … ON CONFLICT DO NOTHING`, otherwise
 * `UPDATE … WHERE storage_index = $1 AND seq = $2`; either way a rowCount of
 * 0 means another writer got there first (under READ COMMITTED a blocked
 * UPDATE re-checks its WHERE against the winner's row, so of N racing swaps
 * exactly one matches). A statement resolves after COMMIT, which with the
 * server's default synchronous_commit = on means after the WAL is flushed.
 *
 * The database is trusted no more than a chunk store: it may withhold or roll
 * back a slot, but the tree layer verifies the signature inside every record
 * it reads, so it cannot forge one.
 *
 * Connection failures and server restarts are TransientError (errors.ts);
 * the pool drops broken connections and reconnects on the next use. A
 * TransientError from compareAndSwap leaves its outcome unknown (the
 * connection may have dropped after COMMIT): callers re-read the slot, as
 * after a ConflictError.
 */
export class PostgresSlotStore implements SlotStore {
  private closing: Promise<void> | undefined;
  private pending = 0;

  private readonly table: string;

  private constructor(
    private readonly pool: pg.Pool,
    /** The quoted schema name. */
    private readonly schema: string,
  ) {
    this.table = `${schema}.capstan_slots`;
  }

  get history(): SlotHistory {
    return this.#history;
  }

  /** Connects, creates or migrates the schema (migrations.ts), and returns the store. */
  static async open(options: PostgresSlotStoreOptions = {}): Promise<PostgresSlotStore> {
    const schema = options.schema ?? 'public';
    const connection = {
      url: options.url,
      password: options.password,
      poolSize: options.poolSize ?? DEFAULT_POOL_SIZE,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      statementTimeoutMs: options.statementTimeoutMs ?? 15_000,
      logger: options.logger,
    };
    const pool = await openMigratedPool(connection, schema, SLOT_STORE_SCHEMA).catch((err: unknown) => {
      throw classifyPostgresError(err, 'opening the schema');
    });
    return new PostgresSlotStore(pool, quoteSchema(schema));
  }

  async get(storageIndex: Uint8Array, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    throwIfAborted(options.signal);
    checkStorageIndex(storageIndex);
    const result = await unlessAborted(
      this.query<{ seq: string; record: Buffer }>('get', `SELECT seq, record FROM ${this.table} WHERE storage_index = $1`, [
        Buffer.from(storageIndex),
      ]),
      options.signal,
    );
    throwIfAborted(options.signal);
    const row = result.rows[0];
    if (row === undefined) return undefined;
    // pg hands out a fresh Buffer per row; copy into a plain Uint8Array anyway, as the contract promises callers their own bytes.
    return { seq: parseSeq(storageIndex, row.seq), record: new Uint8Array(row.record) };
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    checkSwap(storageIndex, expectedSeq, next);
    // Copied now: the caller may reuse its buffer while the statement is queued for a connection.
    const si = Buffer.from(storageIndex);
    const record = Buffer.from(next.record);
    // Past this point the swap goes through even if aborted: a half-known outcome is worse than a late one.
    // One statement: capstan_swap (migrations.ts) compares, writes, gives the epoch and keeps what a pin needs.
    const result = await this.query<{ ok: boolean }>('compareAndSwap', `SELECT ${this.schema}.capstan_swap($1, $2, $3, $4) AS ok`, [
      si,
      expectedSeq === null ? null : expectedSeq.toString(),
      next.seq.toString(),
      record,
    ]);
    if (result.rows[0]?.ok !== true) {
      throw new ConflictError(`slot ${storageIndexHex(storageIndex)} is not at the expected seq`);
    }
  }

  /**
   * Keyset pagination, LIST_PAGE indexes per statement: no cursor or
   * connection is held between pages, so abandoning the iteration costs
   * nothing, and slots created during it may or may not be listed.
   */
  async *list(options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    throwIfAborted(options.signal);
    let after: Buffer | undefined;
    for (;;) {
      const result = await unlessAborted(
        this.query<{ storage_index: Buffer }>(
          'list',
          after === undefined
            ? `SELECT storage_index FROM ${this.table} ORDER BY storage_index LIMIT ${LIST_PAGE}`
            : `SELECT storage_index FROM ${this.table} WHERE storage_index > $1 ORDER BY storage_index LIMIT ${LIST_PAGE}`,
          after === undefined ? [] : [after],
        ),
        options.signal,
      );
      for (const row of result.rows) {
        throwIfAborted(options.signal);
        yield new Uint8Array(row.storage_index);
      }
      const last = result.rows.at(-1);
      if (last === undefined || result.rows.length < LIST_PAGE) return;
      after = last.storage_index;
    }
  }

  readonly #history: SlotHistory = {
    pin: async (root, createdMs, options = {}) => {
      throwIfAborted(options.signal);
      checkStorageIndex(root);
      checkCreatedMs(createdMs);
      const result = await this.query<{ epoch: string }>('pin', `SELECT ${this.schema}.capstan_pin($1, $2)::text AS epoch`, [
        Buffer.from(root),
        createdMs,
      ]);
      return { root: new Uint8Array(root), epoch: parseSeq(root, result.rows[0]?.epoch), createdMs };
    },
    unpin: async (root, epoch, options = {}) => {
      throwIfAborted(options.signal);
      checkStorageIndex(root);
      checkEpoch(epoch);
      const result = await this.query('unpin', `DELETE FROM ${this.schema}.capstan_snapshots WHERE root = $1 AND epoch = $2`, [
        Buffer.from(root),
        epoch.toString(),
      ]);
      return result.rowCount === 1;
    },
    prune: async (options = {}) => {
      throwIfAborted(options.signal);
      const result = await this.query(
        'prune',
        `DELETE FROM ${this.schema}.capstan_slot_history h WHERE NOT EXISTS (
           SELECT 1 FROM ${this.schema}.capstan_snapshots s WHERE s.epoch >= h.epoch AND s.epoch < h.superseded)`,
        [],
      );
      return result.rowCount ?? 0;
    },
    pins: (root, options = {}) => this.#pins(root, options),
    getAt: async (storageIndex, epoch, options = {}) => {
      throwIfAborted(options.signal);
      checkStorageIndex(storageIndex);
      checkEpoch(epoch);
      // One statement, so the current version and the kept ones are read from one snapshot.
      const result = await unlessAborted(
        this.query<{ pinned: boolean; seq: string | null; record: Buffer | null }>(
          'getAt',
          `SELECT EXISTS (SELECT 1 FROM ${this.schema}.capstan_snapshots WHERE epoch = $2) AS pinned, v.seq::text AS seq, v.record
           FROM (SELECT 1) one LEFT JOIN LATERAL (
             SELECT seq, record, epoch FROM ${this.table} WHERE storage_index = $1 AND epoch <= $2
             UNION ALL
             SELECT seq, record, epoch FROM ${this.schema}.capstan_slot_history WHERE storage_index = $1 AND epoch <= $2
             ORDER BY epoch DESC LIMIT 1) v ON true`,
          [Buffer.from(storageIndex), epoch.toString()],
        ),
        options.signal,
      );
      const row = result.rows[0];
      if (row?.pinned !== true) throw new NotFoundError('no snapshot at that point');
      if (row.seq === null || row.record === null) return undefined;
      return { seq: parseSeq(storageIndex, row.seq), record: new Uint8Array(row.record) };
    },
  };

  async *#pins(root: Uint8Array | undefined, options: AbortOptions): AsyncIterable<SnapshotPin> {
    throwIfAborted(options.signal);
    if (root !== undefined) checkStorageIndex(root);
    let after = '0';
    for (;;) {
      const values: unknown[] = [after];
      if (root !== undefined) values.push(Buffer.from(root));
      const result = await unlessAborted(
        this.query<{ root: Buffer; epoch: string; created_ms: string }>(
          'pins',
          `SELECT root, epoch::text AS epoch, created_ms::text AS created_ms FROM ${this.schema}.capstan_snapshots
           WHERE epoch > $1 ${root === undefined ? '' : 'AND root = $2'} ORDER BY epoch LIMIT ${LIST_PAGE}`,
          values,
        ),
        options.signal,
      );
      for (const row of result.rows) {
        throwIfAborted(options.signal);
        const pinRoot = new Uint8Array(row.root);
        yield { root: pinRoot, epoch: parseSeq(pinRoot, row.epoch), createdMs: Number(row.created_ms) };
      }
      const last = result.rows.at(-1);
      if (last === undefined || result.rows.length < LIST_PAGE) return;
      after = last.epoch;
    }
  }

  /** A cheap round trip for health checks: resolves when the database answers. */
  async ping(options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    await unlessAborted(this.query('ping', 'SELECT 1', []), options.signal);
  }

  /** Waits for statements in flight, then closes every connection. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.pool.end());
  }

  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    what: string,
    text: string,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (this.pending >= MAX_PENDING_STATEMENTS) {
      throw new TransientError(`postgres slot store: ${what} refused, ${MAX_PENDING_STATEMENTS} statements already waiting`);
    }
    this.pending++;
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw classifyPostgresError(err, what);
    } finally {
      this.pending--;
    }
  }
}
