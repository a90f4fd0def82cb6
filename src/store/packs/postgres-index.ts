import { CID } from 'multiformats/cid';
import { type AbortOptions, IntegrityError, throwIfAborted } from '../../errors.js';
import { isChunkAddress } from '../address.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import { BoundedPool, type ComponentDatabase } from '../slots/postgres/bounded-pool.js';
import type { SchemaComponent } from '../slots/postgres/migrations.js';
import { type Location, PACK_ID_BYTES } from './format.js';
import type { IndexEntry, ObjectIndex, RemoveIfOptions } from './index-store.js';

/** The slots' database and schema: the index's tables sit beside the slots (pool default INDEX_POOL_SIZE). */
export type PostgresObjectIndexOptions = ComponentDatabase;

export const INDEX_POOL_SIZE = 4;
/** Entries per list() statement and per putMany() statement. */
const PAGE = 1000;
const MAX_PENDING = 1024;

export const OBJECT_INDEX_SCHEMA: SchemaComponent = {
  name: 'object index',
  versionTable: 'capstan_objects_schema_version',
  migrations: [
    `CREATE TABLE {schema}.capstan_objects (
       address bytea PRIMARY KEY CHECK (octet_length(address) BETWEEN 34 AND 64),
       pack bytea NOT NULL CHECK (octet_length(pack) = ${PACK_ID_BYTES}),
       pack_offset bigint NOT NULL CHECK (pack_offset >= 0),
       length integer NOT NULL CHECK (length >= 0),
       last_put bigint NOT NULL CHECK (last_put >= 0)
     )`,
  ],
};

interface Row {
  address?: Buffer;
  pack: Buffer;
  pack_offset: string;
  length: number;
  last_put: string;
}

/**
 * The object index in PostgreSQL, shared by every gateway of a deployment
 * (docs/spec/packs.md, Several gateways): a gateway finds an object another
 * gateway stored by asking it. Each conditional change is one statement, so
 * the row lock makes it atomic against every other gateway's (see the
 * contract in index-store.ts):
 *
 *     capstan_objects(address bytea primary key,   binary CID
 *                     pack bytea,                  8-byte pack id
 *                     pack_offset bigint, length integer, last_put bigint)
 *
 * Like the slots, the rows are trusted no more than the store: every object
 * read through an entry is re-hashed against its address.
 * Bounds: `poolSize` connections; PAGE rows per statement; MAX_PENDING
 * statements admitted, then TransientError.
 */
export class PostgresObjectIndex implements ObjectIndex {
  private constructor(
    private readonly db: BoundedPool,
    private readonly table: string,
  ) {}

  static async open(options: PostgresObjectIndexOptions = {}): Promise<PostgresObjectIndex> {
    const { db, schema } = await BoundedPool.open(options, {
      component: 'postgres object index',
      applicationName: 'capstan object index',
      poolSize: INDEX_POOL_SIZE,
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 15_000,
      maxPending: MAX_PENDING,
      tables: OBJECT_INDEX_SCHEMA,
    });
    return new PostgresObjectIndex(db, `${schema}.capstan_objects`);
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<IndexEntry | undefined> {
    throwIfAborted(options.signal);
    const rows = (
      await this.db.query<Row>('get', `SELECT pack, pack_offset, length, last_put FROM ${this.table} WHERE address = $1`, [
        Buffer.from(address.bytes),
      ])
    ).rows;
    return rows[0] === undefined ? undefined : decodeRow(address, rows[0]);
  }

  async getMany(addresses: readonly ChunkAddress[], options: AbortOptions = {}): Promise<(IndexEntry | undefined)[]> {
    throwIfAborted(options.signal);
    const found = new Map<string, Row>();
    const unique = [...new Map(addresses.map((a) => [a.toString(), a])).values()];
    for (let i = 0; i < unique.length; i += PAGE) {
      const page = unique.slice(i, i + PAGE);
      const { rows } = await this.db.query<Row>(
        'getMany',
        `SELECT address, pack, pack_offset, length, last_put FROM ${this.table} WHERE address = ANY($1::bytea[])`,
        [page.map((a) => Buffer.from(a.bytes))],
      );
      for (const row of rows) if (row.address !== undefined) found.set(row.address.toString('hex'), row);
    }
    return addresses.map((address) => {
      const row = found.get(Buffer.from(address.bytes).toString('hex'));
      return row === undefined ? undefined : decodeRow(address, row);
    });
  }

  async putMany(entries: readonly IndexEntry[], options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    // One row per address per statement (ON CONFLICT cannot touch a row twice): the last entry wins, as in sequence.
    const last = new Map<string, IndexEntry>();
    for (const e of entries) last.set(e.address.toString(), e);
    const unique = [...last.values()];
    for (let i = 0; i < unique.length; i += PAGE) {
      const page = unique.slice(i, i + PAGE);
      await this.db.query(
        'putMany',
        `INSERT INTO ${this.table} (address, pack, pack_offset, length, last_put)
           SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bigint[], $4::integer[], $5::bigint[])
         ON CONFLICT (address) DO UPDATE SET pack = EXCLUDED.pack, pack_offset = EXCLUDED.pack_offset,
           length = EXCLUDED.length, last_put = EXCLUDED.last_put`,
        [
          page.map((e) => Buffer.from(e.address.bytes)),
          page.map((e) => Buffer.from(e.location.pack, 'hex')),
          page.map((e) => String(e.location.offset)),
          page.map((e) => e.location.length),
          page.map((e) => String(e.lastPutSec)),
        ],
      );
    }
  }

  async refreshIf(address: ChunkAddress, location: Location, lastPutSec: number, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    const result = await this.db.query(
      'refreshIf',
      `UPDATE ${this.table} SET last_put = $5 WHERE address = $1 AND pack = $2 AND pack_offset = $3 AND length = $4`,
      [...where(address, location), String(lastPutSec)],
    );
    return result.rowCount === 1;
  }

  async removeIf(address: ChunkAddress, location: Location, options: RemoveIfOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    const idle = options.idleBeforeSec === undefined ? '' : ' AND last_put < $5';
    const result = await this.db.query(
      'removeIf',
      `DELETE FROM ${this.table} WHERE address = $1 AND pack = $2 AND pack_offset = $3 AND length = $4${idle}`,
      options.idleBeforeSec === undefined ? where(address, location) : [...where(address, location), String(options.idleBeforeSec)],
    );
    return result.rowCount === 1;
  }

  async moveIf(address: ChunkAddress, from: Location, to: Location, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    const result = await this.db.query(
      'moveIf',
      `UPDATE ${this.table} SET pack = $5, pack_offset = $6, length = $7
         WHERE address = $1 AND pack = $2 AND pack_offset = $3 AND length = $4`,
      [...where(address, from), Buffer.from(to.pack, 'hex'), String(to.offset), to.length],
    );
    return result.rowCount === 1;
  }

  /** Keyset pagination by address, PAGE rows per statement; entries put meanwhile may or may not be listed. */
  async *list(options: AbortOptions = {}): AsyncIterable<IndexEntry> {
    let after: Buffer | undefined;
    for (;;) {
      throwIfAborted(options.signal);
      const rows = (
        await this.db.query<Row>(
          'list',
          `SELECT address, pack, pack_offset, length, last_put FROM ${this.table}
             ${after === undefined ? '' : 'WHERE address > $1'} ORDER BY address LIMIT ${PAGE}`,
          after === undefined ? [] : [after],
        )
      ).rows;
      for (const row of rows) {
        let cid: CID;
        try {
          cid = CID.decode(new Uint8Array(row.address!));
        } catch {
          continue; // not an address any capstan wrote: skip, as the LevelDB index does
        }
        if (isChunkAddress(cid)) yield decodeRow(cid, row);
      }
      const last = rows.at(-1);
      if (last === undefined || rows.length < PAGE) return;
      after = last.address;
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

function where(address: ChunkAddress, location: Location): unknown[] {
  return [Buffer.from(address.bytes), Buffer.from(location.pack, 'hex'), String(location.offset), location.length];
}

function decodeRow(address: ChunkAddress, row: Row): IndexEntry {
  const offset = Number(row.pack_offset);
  const lastPutSec = Number(row.last_put);
  if (row.pack.length !== PACK_ID_BYTES || !Number.isSafeInteger(offset) || !Number.isSafeInteger(lastPutSec)) {
    throw new IntegrityError(address.toString(), 'index entry');
  }
  return { address, location: { pack: row.pack.toString('hex'), offset, length: row.length }, lastPutSec };
}
