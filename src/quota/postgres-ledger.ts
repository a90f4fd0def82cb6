import { IntegrityError, InvalidInputError } from '../errors.js';
import { BoundedPool, type ComponentDatabase } from '../store/slots/postgres/bounded-pool.js';
import type { SchemaComponent } from '../store/slots/postgres/migrations.js';
import type { Usage, UsageLedger } from './ledger.js';
import type { Quota } from './quotas-file.js';

/**
 * Usage counters in PostgreSQL, beside the slots (same database and schema),
 * shared by every gateway of that database (docs/spec/quotas.md):
 *
 *     capstan_quota_usage(account text primary key,   the user name, 1..256 characters
 *                         bytes bigint,               ≥ 0
 *                         files bigint,               ≥ 0
 *                         counted_at bigint)          ms since 1970 of the walk
 *
 * Every operation is one statement. add is a conditional UPDATE: the row lock
 * orders racing adds, and each sees the counters the one before it left, so
 * of adds that together pass a limit only those that fit land, whichever
 * gateways send them.
 */
/** The slots' database and schema (node/backends.ts slotsDatabase). */
export type PostgresUsageLedgerOptions = ComponentDatabase;

const COMPONENT = 'postgres quota usage';
const MAX_ACCOUNT_LENGTH = 256;
const MAX_PENDING = 1024;

export const QUOTA_USAGE_SCHEMA: SchemaComponent = {
  name: 'quota usage',
  versionTable: 'capstan_quota_schema_version',
  migrations: [
    `CREATE TABLE {schema}.capstan_quota_usage (
       account text PRIMARY KEY CHECK (length(account) BETWEEN 1 AND ${MAX_ACCOUNT_LENGTH}),
       bytes bigint NOT NULL CHECK (bytes >= 0),
       files bigint NOT NULL CHECK (files >= 0),
       counted_at bigint NOT NULL CHECK (counted_at >= 0)
     )`,
  ],
};

function checkAccount(user: string): void {
  if (user.length === 0 || user.length > MAX_ACCOUNT_LENGTH) throw new InvalidInputError('account name length out of range');
}

function checkDelta(n: number): void {
  if (!Number.isSafeInteger(n)) throw new InvalidInputError('usage delta is not a safe integer');
}

/** pg returns BIGINT as a string; the table's CHECKs keep these ≥ 0, and any a capstan wrote within safe integers. */
function int(user: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new IntegrityError(user, 'quota usage row');
  return n;
}

export class PostgresUsageLedger implements UsageLedger {
  private constructor(
    private readonly db: BoundedPool,
    private readonly table: string,
  ) {}

  /** Connects, creates or migrates the table, and returns the ledger. */
  static async open(options: PostgresUsageLedgerOptions = {}): Promise<PostgresUsageLedger> {
    const { db, schema } = await BoundedPool.open(options, {
      component: COMPONENT,
      applicationName: 'capstan quota',
      poolSize: 4,
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 10_000,
      maxPending: MAX_PENDING,
      tables: QUOTA_USAGE_SCHEMA,
    });
    return new PostgresUsageLedger(db, `${schema}.capstan_quota_usage`);
  }

  async get(user: string): Promise<Usage | undefined> {
    checkAccount(user);
    const result = await this.db.query<{ bytes: string; files: string; counted_at: string }>(
      'get',
      `SELECT bytes, files, counted_at FROM ${this.table} WHERE account = $1`,
      [user],
    );
    const row = result.rows[0];
    return row && { bytes: int(user, row.bytes), files: int(user, row.files), countedAt: int(user, row.counted_at) };
  }

  async add(user: string, bytes: number, files: number, limit?: Quota): Promise<boolean> {
    checkAccount(user);
    checkDelta(bytes);
    checkDelta(files);
    // Limits are checked for positive deltas only, as fitsLimit does; NULL: no limit.
    const result = await this.db.query<{ applied: boolean; counted: boolean }>(
      'add',
      `WITH u AS (
         UPDATE ${this.table} SET bytes = GREATEST(0, bytes + $2::bigint), files = GREATEST(0, files + $3::bigint)
         WHERE account = $1
           AND ($2::bigint <= 0 OR $4::bigint IS NULL OR bytes + $2::bigint <= $4::bigint)
           AND ($3::bigint <= 0 OR $5::bigint IS NULL OR files + $3::bigint <= $5::bigint)
         RETURNING 1
       )
       SELECT EXISTS (SELECT 1 FROM u) AS applied, EXISTS (SELECT 1 FROM ${this.table} WHERE account = $1) AS counted`,
      [user, bytes, files, limit?.bytes ?? null, limit?.files ?? null],
    );
    const row = result.rows[0];
    return row === undefined || row.applied || !row.counted;
  }

  async set(user: string, usage: Usage): Promise<void> {
    checkAccount(user);
    for (const n of [usage.bytes, usage.files, usage.countedAt]) {
      if (!Number.isSafeInteger(n) || n < 0) throw new InvalidInputError('usage counters must be safe non-negative integers');
    }
    await this.db.query(
      'set',
      `INSERT INTO ${this.table} AS t (account, bytes, files, counted_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (account) DO UPDATE SET bytes = EXCLUDED.bytes, files = EXCLUDED.files, counted_at = EXCLUDED.counted_at
       WHERE t.counted_at <= EXCLUDED.counted_at`,
      [user, usage.bytes, usage.files, usage.countedAt],
    );
  }

  async delete(user: string): Promise<void> {
    checkAccount(user);
    await this.db.query('delete', `DELETE FROM ${this.table} WHERE account = $1`, [user]);
  }

  async refresh(): Promise<void> {}

  /** Waits for statements in flight, then closes every connection. Idempotent. */
  close(): Promise<void> {
    return this.db.close();
  }
}
