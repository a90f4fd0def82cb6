import { ConflictError, IntegrityError, throwIfAborted, type AbortOptions } from '../errors.js';
import { BoundedPool, type ComponentDatabase } from '../store/slots/postgres/bounded-pool.js';
import type { SchemaComponent } from '../store/slots/postgres/migrations.js';
import { abortable } from '../tree/file/abortable.js';
import { checkClientKey } from './memory-store.js';
import type { ClientRecord } from './policy.js';
import { decodeEvents, MAX_EVENTS } from './record-format.js';
import { MAX_CLIENT_KEY_LENGTH, type BanEntry, type DefenderStore, type VersionedRecord } from './store.js';

/**
 * The defender's records in PostgreSQL, shared by every gateway of one
 * database and schema (the slot store's: `[storage] slots.postgres.*`), so
 * failures at any gateway count against one threshold and a ban decided at
 * one is enforced at all (docs/spec/defender.md).
 *
 * Tables (their own version table and migrations, migrated under the
 * schema's lock like the slot store's):
 *
 *     capstan_defender(client text primary key,   a client key, 1..100 characters
 *                      version bigint,            1, 2, … per write
 *                      banned_until bigint,       ms since the epoch; 0: never banned
 *                      offences integer,
 *                      last_seen bigint,          ms; eviction order at the bound
 *                      forget_at bigint,          ms; deleted by sweeps after it
 *                      events jsonb)              [[at, points], …]
 *     capstan_defender_generation(generation bigint)   one row; moves with the ban list
 *
 * A write is one statement: INSERT … ON CONFLICT DO NOTHING from no version,
 * otherwise UPDATE … WHERE client = $1 AND version = $2; a rowCount of 0 is
 * ConflictError (the row lock makes one of racing writers win, as in the
 * slot store). A write of a banned record and a delete also bump the
 * generation row in the same statement (a data-modifying WITH), so a reader
 * that reads the generation, then the bans, and later the same generation
 * again has missed nothing.
 *
 * A small pool of its own (DEFENDER_POOL_SIZE connections, short timeouts),
 * so a flood of failed logins never takes connections the slot store needs,
 * and at most MAX_PENDING statements wait: past that, TransientError at once
 * and the defender answers from its local view.
 */
/** The slots' database and schema (statement timeout default 2000 ms: a defender that waits longer answers from its local view anyway). */
export type PostgresDefenderStoreOptions = ComponentDatabase;

export const DEFENDER_POOL_SIZE = 2;
const MAX_PENDING = 256;
const COMPONENT = 'postgres defender store';

export const DEFENDER_SCHEMA: SchemaComponent = {
  name: 'defender',
  versionTable: 'capstan_defender_schema_version',
  migrations: [
    `CREATE TABLE {schema}.capstan_defender (
       client text PRIMARY KEY CHECK (length(client) BETWEEN 1 AND ${MAX_CLIENT_KEY_LENGTH}),
       version bigint NOT NULL CHECK (version >= 1),
       banned_until bigint NOT NULL CHECK (banned_until >= 0),
       offences integer NOT NULL CHECK (offences >= 0),
       last_seen bigint NOT NULL CHECK (last_seen >= 0),
       forget_at bigint NOT NULL,
       events jsonb NOT NULL CHECK (jsonb_typeof(events) = 'array' AND jsonb_array_length(events) <= ${MAX_EVENTS})
     );
     CREATE INDEX capstan_defender_banned_until ON {schema}.capstan_defender (banned_until);
     CREATE INDEX capstan_defender_forget_at ON {schema}.capstan_defender (forget_at);
     CREATE INDEX capstan_defender_last_seen ON {schema}.capstan_defender (last_seen);
     CREATE TABLE {schema}.capstan_defender_generation (generation bigint NOT NULL);
     INSERT INTO {schema}.capstan_defender_generation (generation) VALUES (0);`,
  ],
};

interface Row {
  version: string;
  banned_until: string;
  offences: number;
  last_seen: string;
  forget_at: string;
  events: unknown;
}

/** pg returns BIGINT as a string; the table's CHECKs keep these within safe integers for any record a capstan wrote. */
function int(key: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new IntegrityError(key, 'defender record');
  return n;
}

export class PostgresDefenderStore implements DefenderStore {
  private constructor(
    private readonly db: BoundedPool,
    private readonly table: string,
    private readonly generationTable: string,
  ) {}

  /** Connects, creates or migrates the defender's tables, and returns the store. */
  static async open(options: PostgresDefenderStoreOptions = {}): Promise<PostgresDefenderStore> {
    const { db, schema } = await BoundedPool.open(options, {
      component: COMPONENT,
      applicationName: 'capstan defender',
      poolSize: DEFENDER_POOL_SIZE,
      connectTimeoutMs: 2_000,
      statementTimeoutMs: 2_000,
      maxPending: MAX_PENDING,
      tables: DEFENDER_SCHEMA,
    });
    return new PostgresDefenderStore(db, `${schema}.capstan_defender`, `${schema}.capstan_defender_generation`);
  }

  async get(key: string, options: AbortOptions = {}): Promise<VersionedRecord | undefined> {
    throwIfAborted(options.signal);
    checkClientKey(key);
    const result = await abortable(
      this.db.query<Row>(
        'get',
        `SELECT version, banned_until, offences, last_seen, forget_at, events FROM ${this.table} WHERE client = $1`,
        [key],
      ),
      options.signal,
    );
    const row = result.rows[0];
    if (row === undefined) return undefined;
    const events = decodeEvents(row.events);
    if (events === undefined) throw new IntegrityError(key, 'defender record');
    return {
      version: int(key, row.version),
      record: {
        events,
        bannedUntil: int(key, row.banned_until),
        offences: row.offences,
        lastSeen: int(key, row.last_seen),
        forgetAt: int(key, row.forget_at),
      },
    };
  }

  async put(key: string, expectedVersion: number | undefined, record: ClientRecord, options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    checkClientKey(key);
    const values = [
      key,
      record.bannedUntil,
      record.offences,
      record.lastSeen,
      record.forgetAt,
      JSON.stringify(record.events.map((e) => [e.at, e.points])),
      // Bumps the generation: this write may add a ban.
      record.bannedUntil > record.lastSeen,
    ];
    const bump = `UPDATE ${this.generationTable} SET generation = generation + 1 WHERE $7::boolean AND EXISTS (SELECT 1 FROM w)`;
    // Past this point the write goes through even if aborted: a half-known outcome is worse than a late one.
    const result =
      expectedVersion === undefined
        ? await this.db.query<{ n: number }>(
            'put',
            `WITH w AS (
               INSERT INTO ${this.table} (client, version, banned_until, offences, last_seen, forget_at, events)
               VALUES ($1, 1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (client) DO NOTHING RETURNING 1
             ), g AS (${bump})
             SELECT count(*)::int AS n FROM w`,
            values,
          )
        : await this.db.query<{ n: number }>(
            'put',
            `WITH w AS (
               UPDATE ${this.table} SET version = version + 1, banned_until = $2, offences = $3, last_seen = $4, forget_at = $5, events = $6::jsonb
               WHERE client = $1 AND version = $8 RETURNING 1
             ), g AS (${bump})
             SELECT count(*)::int AS n FROM w`,
            [...values, expectedVersion],
          );
    if (result.rows[0]?.n !== 1) throw new ConflictError('defender record is not at the expected version');
    return (expectedVersion ?? 0) + 1;
  }

  async delete(key: string, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    checkClientKey(key);
    const result = await this.db.query<{ n: number }>(
      'delete',
      `WITH d AS (DELETE FROM ${this.table} WHERE client = $1 RETURNING 1),
            g AS (UPDATE ${this.generationTable} SET generation = generation + 1 WHERE EXISTS (SELECT 1 FROM d))
       SELECT count(*)::int AS n FROM d`,
      [key],
    );
    return result.rows[0]?.n === 1;
  }

  async bans(now: number, limit: number, options: AbortOptions = {}): Promise<BanEntry[]> {
    throwIfAborted(options.signal);
    const result = await abortable(
      this.db.query<{ client: string; banned_until: string; offences: number }>(
        'bans',
        `SELECT client, banned_until, offences FROM ${this.table} WHERE banned_until > $1 ORDER BY banned_until DESC LIMIT $2`,
        [now, limit],
      ),
      options.signal,
    );
    return result.rows.map((r) => ({ key: r.client, bannedUntil: int(r.client, r.banned_until), offences: r.offences }));
  }

  async generation(options: AbortOptions = {}): Promise<string> {
    throwIfAborted(options.signal);
    const result = await abortable(
      this.db.query<{ generation: string }>('generation', `SELECT generation FROM ${this.generationTable}`, []),
      options.signal,
    );
    return result.rows[0]?.generation ?? '0';
  }

  /**
   * Two statements: the forgettable rows, then the excess over maxEntries in
   * the contract's order (unbanned before banned, then least recently seen),
   * counted with one count(*) (cheap at the bound's size).
   */
  async sweep(now: number, maxEntries: number, options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    const expired = await this.db.query<{ n: number }>(
      'sweep',
      `WITH d AS (DELETE FROM ${this.table} WHERE forget_at < $1 RETURNING 1) SELECT count(*)::int AS n FROM d`,
      [now],
    );
    throwIfAborted(options.signal);
    const excess = await this.db.query<{ n: number }>(
      'sweep',
      `WITH x AS (
         SELECT client FROM ${this.table} ORDER BY (banned_until > $1), last_seen, client
         LIMIT GREATEST(0, (SELECT count(*) FROM ${this.table}) - $2)
       ), d AS (DELETE FROM ${this.table} WHERE client IN (SELECT client FROM x) RETURNING banned_until),
       g AS (UPDATE ${this.generationTable} SET generation = generation + 1 WHERE EXISTS (SELECT 1 FROM d WHERE banned_until > $1))
       SELECT count(*)::int AS n FROM d`,
      [now, maxEntries],
    );
    return (expired.rows[0]?.n ?? 0) + (excess.rows[0]?.n ?? 0);
  }

  async size(options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    const result = await this.db.query<{ n: number }>('size', `SELECT count(*)::int AS n FROM ${this.table}`, []);
    return result.rows[0]?.n ?? 0;
  }

  /** Waits for statements in flight, then closes every connection. Idempotent. */
  close(): Promise<void> {
    return this.db.close();
  }
}
