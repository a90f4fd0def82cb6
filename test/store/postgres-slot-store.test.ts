import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/store/slots/postgres/migrations.js';
import { PostgresSlotStore, SCHEMA_VERSION } from '../../src/store/slots/postgres/index.js';
import type { SlotStore } from '../../src/store/slots/slot-store.js';
import { slotStoreConformance } from '../conformance/slot-store.js';
import { skipNotice } from '../helpers/openssh.js';
import { dropSchema, freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const unavailable = skipNotice(postgresUnavailable(), 'PostgresSlotStore');

describe.skipIf(unavailable !== undefined)('PostgresSlotStore', () => {
  let server: TestPostgres;
  const schemas = new WeakMap<SlotStore, string>();
  beforeAll(async () => {
    server = await startPostgres();
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
  });

  // Each test gets a schema of its own, so list() starts empty.
  slotStoreConformance('PostgresSlotStore', {
    history: true,
    setup: async () => {
      const schema = freshSchema();
      const store = await PostgresSlotStore.open({ url: server.url, schema, poolSize: 8 });
      schemas.set(store, schema);
      return store;
    },
    teardown: async (store) => {
      await store.close();
      await dropSchema(server.url, schemas.get(store)!);
    },
    secondClient: (store) => PostgresSlotStore.open({ url: server.url, schema: schemas.get(store)!, poolSize: 4 }),
    reopen: async (store) => {
      await store.close();
      const reopened = await PostgresSlotStore.open({ url: server.url, schema: schemas.get(store)! });
      schemas.set(reopened, schemas.get(store)!);
      return reopened;
    },
  });

  describe('schema and failures', () => {
    const si = new Uint8Array(32).fill(7);

    it('two stores opening a fresh schema at once both migrate it once, to the current version', async () => {
      const schema = freshSchema('mig');
      const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresSlotStore.open({ url: server.url, schema, poolSize: 2 })));
      try {
        await stores[0]!.compareAndSwap(si, null, { seq: 1n, record: Uint8Array.of(1) });
        expect(await stores[3]!.get(si)).toEqual({ seq: 1n, record: Uint8Array.of(1) });
        const client = new pg.Client({ connectionString: server.url });
        await client.connect();
        try {
          const rows = (await client.query(`SELECT version FROM "${schema}".capstan_schema_version`)).rows;
          expect(rows).toEqual([{ version: SCHEMA_VERSION }]);
          // seq is stored as NUMERIC so the whole u64 range fits.
          const type = await client.query(
            `SELECT data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'capstan_slots' AND column_name = 'seq'`,
            [schema],
          );
          expect(type.rows).toEqual([{ data_type: 'numeric' }]);
          // A database from a newer capstan is refused, not written to.
          await client.query(`UPDATE "${schema}".capstan_schema_version SET version = $1`, [SCHEMA_VERSION + 1]);
        } finally {
          await client.end();
        }
        await expect(PostgresSlotStore.open({ url: server.url, schema })).rejects.toMatchObject({ name: 'InvalidInputError' });
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await dropSchema(server.url, schema);
      }
    });

    it('a schema of version 1 (before slot history) migrates: its slots read as before, at epoch 0, and snapshots work', async () => {
      const schema = freshSchema('v1');
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      const record = Uint8Array.of(1, 2, 3);
      try {
        await client.query(`CREATE SCHEMA "${schema}"`);
        await client.query(MIGRATIONS[0]!.replaceAll('{schema}', `"${schema}"`));
        await client.query(`CREATE TABLE "${schema}".capstan_schema_version (version integer NOT NULL)`);
        await client.query(`INSERT INTO "${schema}".capstan_schema_version (version) VALUES (1)`);
        await client.query(`INSERT INTO "${schema}".capstan_slots (storage_index, seq, record) VALUES ($1, 5, $2)`, [
          Buffer.from(si),
          Buffer.from(record),
        ]);
      } finally {
        await client.end();
      }
      const store = await PostgresSlotStore.open({ url: server.url, schema, poolSize: 2 });
      try {
        expect(await store.get(si)).toEqual({ seq: 5n, record });
        const pin = await store.history.pin(new Uint8Array(32).fill(1), 1);
        await store.compareAndSwap(si, 5n, { seq: 6n, record: Uint8Array.of(9) });
        expect(await store.history.getAt(si, pin.epoch)).toEqual({ seq: 5n, record });
        expect(await store.get(si)).toEqual({ seq: 6n, record: Uint8Array.of(9) });
      } finally {
        await store.close();
        await dropSchema(server.url, schema);
      }
    });

    it('a server nobody listens on is TransientError at open', async () => {
      const port = await new Promise<number>((resolve) => {
        const probe = net.createServer().listen(0, '127.0.0.1', () => {
          const { port } = probe.address() as net.AddressInfo;
          probe.close(() => resolve(port));
        });
      });
      await expect(
        PostgresSlotStore.open({ url: `postgres://capstan@127.0.0.1:${port}/capstan`, connectTimeoutMs: 2_000 }),
      ).rejects.toMatchObject({ name: 'TransientError' });
    });

    it.skipIf(process.env.CAPSTAN_TEST_POSTGRES_URL !== undefined)(
      'the password option is used when the URL has none; a wrong one is InvalidInputError that does not echo it',
      async () => {
        const url = new URL(server.url);
        const password = decodeURIComponent(url.password);
        url.password = '';
        const schema = freshSchema('pw');
        const store = await PostgresSlotStore.open({ url: url.toString(), password, schema });
        await store.close();
        await dropSchema(server.url, schema);
        const err = await PostgresSlotStore.open({ url: url.toString(), password: 'not-the-password-x9', schema }).catch((e: unknown) => e);
        expect(err).toMatchObject({ name: 'InvalidInputError' });
        expect((err as Error).message).not.toContain('not-the-password-x9');
        // A password in the URL wins over the option.
        const both = await PostgresSlotStore.open({ url: server.url, password: 'not-the-password-x9', schema });
        await both.close();
        await dropSchema(server.url, schema);
      },
    );

    it('a bad schema name is InvalidInputError', async () => {
      await expect(PostgresSlotStore.open({ url: server.url, schema: 'x"; DROP TABLE y; --' })).rejects.toMatchObject({
        name: 'InvalidInputError',
      });
    });

    it.skipIf(process.env.CAPSTAN_TEST_POSTGRES_URL !== undefined)(
      'while the server is down every method is TransientError; once it is back the same store works again',
      async () => {
        const schema = freshSchema('down');
        const store = await PostgresSlotStore.open({ url: server.url, schema, connectTimeoutMs: 2_000 });
        try {
          await store.compareAndSwap(si, null, { seq: 1n, record: Uint8Array.of(1) });
          await server.pause();
          try {
            await expect(store.get(si)).rejects.toMatchObject({ name: 'TransientError' });
            await expect(store.compareAndSwap(si, 1n, { seq: 2n, record: Uint8Array.of(2) })).rejects.toMatchObject({
              name: 'TransientError',
            });
            await expect(store.ping()).rejects.toMatchObject({ name: 'TransientError' });
          } finally {
            await server.resume();
          }
          expect(await store.get(si)).toEqual({ seq: 1n, record: Uint8Array.of(1) });
          await store.compareAndSwap(si, 1n, { seq: 2n, record: Uint8Array.of(2) });
          expect(await store.get(si)).toEqual({ seq: 2n, record: Uint8Array.of(2) });
        } finally {
          await store.close();
          await dropSchema(server.url, schema);
        }
      },
      30_000,
    );
  });
});
