import type pg from 'pg';
import type { PoolClient } from 'pg';
import { InvalidInputError } from '../../../errors.js';
import { createPool, type PostgresConnectionOptions } from './pool.js';
import { MAX_SLOT_RECORD_BYTES, MAX_SLOT_SEQ, STORAGE_INDEX_BYTES } from '../slot-limits.js';

/**
 * The PostgreSQL schema of the slot store, created and migrated by capstan
 * itself. MIGRATIONS is append-only: entry i takes the schema from version i
 * to version i + 1, and a released entry is never edited (a database at
 * version 3 has run entries 0..2 exactly as they were). Table names are
 * qualified by the configured schema, substituted for `{schema}`.
 *
 * Format v1:
 *
 *     capstan_schema_version(version integer)          one row: migrations applied
 *     capstan_slots(storage_index bytea primary key,   32 bytes
 *                   seq numeric(20, 0),                u64, 0..2^64-1
 *                   record bytea)                      0..64 KiB, opaque, signed
 *
 * Format v2 (migration 2) adds slot history for snapshots: an epoch per
 * slot, the capstan_slot_history and capstan_snapshots tables, and the
 * capstan_swap and capstan_pin functions (docs/spec/snapshots.md).
 *
 * seq is NUMERIC(20,0), not BIGINT: BIGINT is signed and tops out at 2^63-1,
 * while the slot contract allows the full u64 range. The CHECK constraints
 * repeat slot-limits.ts so a bug in any client cannot store what this code
 * would refuse to read.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE {schema}.capstan_slots (
     storage_index bytea PRIMARY KEY CHECK (octet_length(storage_index) = ${STORAGE_INDEX_BYTES}),
     seq numeric(20, 0) NOT NULL CHECK (seq >= 0 AND seq <= ${MAX_SLOT_SEQ}),
     record bytea NOT NULL CHECK (octet_length(record) <= ${MAX_SLOT_RECORD_BYTES})
   )`,
  // 2: slot history for snapshots (docs/spec/snapshots.md, PostgreSQL layout).
  `ALTER TABLE {schema}.capstan_slots ADD COLUMN epoch numeric(20, 0) NOT NULL DEFAULT 0;
   CREATE SEQUENCE {schema}.capstan_slot_epoch AS bigint MINVALUE 1;
   CREATE TABLE {schema}.capstan_slot_history (
     storage_index bytea NOT NULL CHECK (octet_length(storage_index) = ${STORAGE_INDEX_BYTES}),
     epoch numeric(20, 0) NOT NULL,
     seq numeric(20, 0) NOT NULL,
     superseded numeric(20, 0) NOT NULL,
     record bytea NOT NULL,
     PRIMARY KEY (storage_index, epoch)
   );
   CREATE TABLE {schema}.capstan_snapshots (
     root bytea NOT NULL CHECK (octet_length(root) = ${STORAGE_INDEX_BYTES}),
     epoch numeric(20, 0) NOT NULL UNIQUE,
     created_ms bigint NOT NULL CHECK (created_ms >= 0),
     PRIMARY KEY (root, epoch)
   );
   CREATE FUNCTION {schema}.capstan_swap(p_si bytea, p_expected numeric, p_seq numeric, p_record bytea) RETURNS boolean
   LANGUAGE plpgsql AS $fn$
   DECLARE
     old_seq numeric; old_record bytea; old_epoch numeric; new_epoch numeric;
   BEGIN
     PERFORM pg_advisory_xact_lock_shared(hashtext('capstan snapshots {schema}'));
     IF p_expected IS NULL THEN
       INSERT INTO {schema}.capstan_slots (storage_index, seq, record, epoch)
         VALUES (p_si, p_seq, p_record, nextval('{schema}.capstan_slot_epoch'))
         ON CONFLICT (storage_index) DO NOTHING;
       RETURN FOUND;
     END IF;
     SELECT seq, record, epoch INTO old_seq, old_record, old_epoch FROM {schema}.capstan_slots
       WHERE storage_index = p_si AND seq = p_expected FOR UPDATE;
     IF NOT FOUND THEN RETURN false; END IF;
     new_epoch := nextval('{schema}.capstan_slot_epoch');
     UPDATE {schema}.capstan_slots SET seq = p_seq, record = p_record, epoch = new_epoch WHERE storage_index = p_si;
     IF EXISTS (SELECT 1 FROM {schema}.capstan_snapshots WHERE epoch >= old_epoch) THEN
       INSERT INTO {schema}.capstan_slot_history (storage_index, epoch, seq, superseded, record)
         VALUES (p_si, old_epoch, old_seq, new_epoch, old_record) ON CONFLICT DO NOTHING;
     END IF;
     RETURN true;
   END $fn$;
   CREATE FUNCTION {schema}.capstan_pin(p_root bytea, p_created bigint) RETURNS numeric
   LANGUAGE plpgsql AS $fn$
   DECLARE e numeric;
   BEGIN
     PERFORM pg_advisory_xact_lock(hashtext('capstan snapshots {schema}'));
     e := nextval('{schema}.capstan_slot_epoch');
     INSERT INTO {schema}.capstan_snapshots (root, epoch, created_ms) VALUES (p_root, e, p_created);
     RETURN e;
   END $fn$`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** A schema name capstan accepts: a plain lower-case SQL identifier, so it needs no quoting rules beyond double quotes. */
export const SCHEMA_NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME_RE.test(schema)) {
    throw new InvalidInputError('a postgres schema name is 1 to 63 of a-z, 0-9 and _, not starting with a digit');
  }
  return `"${schema}"`;
}

/**
 * One set of tables in the schema with its own version table and
 * append-only migrations: the slot store's (below), the defender's
 * (src/defender/postgres-store.ts). Each moves on its own.
 */
export interface SchemaComponent {
  /** For messages: "slot store". */
  name: string;
  /** Table (in the schema) holding the component's version. */
  versionTable: string;
  /** Entry i takes the component from version i to i + 1; never edited once released. `{schema}` is the quoted schema. */
  migrations: readonly string[];
}

export const SLOT_STORE_SCHEMA: SchemaComponent = { name: 'slot store', versionTable: 'capstan_schema_version', migrations: MIGRATIONS };

/**
 * Brings the schema up to SCHEMA_VERSION, in one transaction, under a
 * transaction-scoped advisory lock keyed by the schema name: two gateways
 * starting at once serialize here, and the second finds the work done. A
 * database already at a newer version than this code knows is refused (an
 * older capstan must not write to a format it does not understand).
 * Returns the version found before migrating.
 */
export function migrate(client: PoolClient, schema: string): Promise<number> {
  return migrateComponent(client, schema, SLOT_STORE_SCHEMA);
}

/**
 * Brings one component's tables up to its latest version, as migrate()
 * describes. Every component takes the same advisory lock (the schema's), so
 * two gateways creating the schema for different components never race.
 */
export async function migrateComponent(client: PoolClient, schema: string, component: SchemaComponent): Promise<number> {
  const q = quoteSchema(schema);
  const latest = component.migrations.length;
  const versions = `${q}.${component.versionTable}`;
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`capstan slot store ${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${versions} (version integer NOT NULL)`);
    const rows = (await client.query<{ version: number }>(`SELECT version FROM ${versions}`)).rows;
    const found = rows.length === 0 ? 0 : Math.max(...rows.map((r) => r.version));
    if (found > latest) {
      throw new InvalidInputError(
        `the postgres ${component.name} schema ${schema} is at version ${found}, newer than this capstan's ${latest}: upgrade capstan`,
      );
    }
    for (let v = found; v < latest; v++) await client.query(component.migrations[v]!.replaceAll('{schema}', q));
    if (found < latest) {
      await client.query(`DELETE FROM ${versions}`);
      await client.query(`INSERT INTO ${versions} (version) VALUES ($1)`, [latest]);
    }
    await client.query('COMMIT');
    return found;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * A pool for one component, its tables migrated (migrateComponent) on one
 * of its connections first. If that fails the pool is ended and the error
 * is thrown as pg threw it (callers classify it for their messages).
 */
export async function openMigratedPool(options: PostgresConnectionOptions, schema: string, component: SchemaComponent): Promise<pg.Pool> {
  const pool = createPool(options);
  try {
    const client = await pool.connect();
    let broken = false;
    try {
      await migrateComponent(client, schema, component);
    } catch (err) {
      broken = true;
      throw err;
    } finally {
      client.release(broken); // true: destroy it rather than pool a connection in an unknown state
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return pool;
}
