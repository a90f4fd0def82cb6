import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Defender, DEFAULT_DEFENDER_OPTIONS, type DefenderOptions, type DefenderStore } from '../../src/defender/index.js';
import { PostgresDefenderStore } from '../../src/defender/postgres-store.js';
import { createLogger } from '../../src/log.js';
import { PostgresSlotStore, SCHEMA_VERSION } from '../../src/store/slots/postgres/index.js';
import { defenderStoreConformance } from '../conformance/defender-store.js';
import { skipNotice } from '../helpers/openssh.js';
import { dropSchema, freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const unavailable = skipNotice(postgresUnavailable(), 'PostgresDefenderStore');

describe.skipIf(unavailable !== undefined)('PostgresDefenderStore', () => {
  let server: TestPostgres;
  const schemas = new WeakMap<DefenderStore, string>();
  beforeAll(async () => {
    server = await startPostgres();
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
  });

  defenderStoreConformance('PostgresDefenderStore', {
    setup: async () => {
      const schema = freshSchema('def');
      const store = await PostgresDefenderStore.open({ url: server.url, schema });
      schemas.set(store, schema);
      return store;
    },
    teardown: async (store) => {
      await store.close();
      await dropSchema(server.url, schemas.get(store)!);
    },
    secondClient: (store) => PostgresDefenderStore.open({ url: server.url, schema: schemas.get(store)! }),
    reopen: async (store) => {
      await store.close();
      const reopened = await PostgresDefenderStore.open({ url: server.url, schema: schemas.get(store)! });
      schemas.set(reopened, schemas.get(store)!);
      return reopened;
    },
  });

  it('lives beside the slot store in one schema, each with its own version, whichever opens first', async () => {
    const schema = freshSchema('both');
    const [defender, slots] = await Promise.all([
      PostgresDefenderStore.open({ url: server.url, schema }),
      PostgresSlotStore.open({ url: server.url, schema, poolSize: 1 }),
    ]);
    await Promise.all([defender.close(), slots.close()]);
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const versions = await client.query(
        `SELECT (SELECT version FROM "${schema}".capstan_schema_version) AS slots, (SELECT version FROM "${schema}".capstan_defender_schema_version) AS defender`,
      );
      expect(versions.rows).toEqual([{ slots: SCHEMA_VERSION, defender: 1 }]);
    } finally {
      await client.end();
      await dropSchema(server.url, schema);
    }
  });

  describe('defenders of several gateways on one database', () => {
    const logs: Record<string, unknown>[] = [];
    const logger = createLogger('debug', { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
    const schema = freshSchema('gw');
    const opened: { store: DefenderStore; defender: Defender }[] = [];

    async function gateway(over: Partial<DefenderOptions> = {}): Promise<Defender> {
      const store = await PostgresDefenderStore.open({ url: server.url, schema });
      const defender = new Defender(
        { ...DEFAULT_DEFENDER_OPTIONS, threshold: 6, logger, refreshMs: 200, storeTimeoutMs: 500, ...over },
        store,
      );
      await defender.start();
      opened.push({ store, defender });
      return defender;
    }

    afterAll(async () => {
      for (const { store, defender } of opened) {
        await defender.close();
        await store.close();
      }
      if (server !== undefined) await dropSchema(server.url, schema);
    });

    it('count one threshold across gateways, and every gateway refuses the address within a refresh', async () => {
      const gws = await Promise.all([gateway(), gateway(), gateway()]);
      // Five failures spread over three gateways, at once: none bans.
      const five = await Promise.all([0, 1, 2, 0, 1].map((i) => gws[i]!.recordFailure('203.0.113.9', 'wrong_credential')));
      expect(five).toEqual([false, false, false, false, false]);
      const started = Date.now();
      expect(await gws[2]!.recordFailure('203.0.113.9', 'wrong_credential')).toBe(true);
      await vi.waitFor(() => expect(gws.every((g) => g.admit('203.0.113.9').ok === false)).toBe(true), { timeout: 5_000, interval: 20 });
      const propagationMs = Date.now() - started;
      console.info(`defender: a ban reached 3 gateways on PostgreSQL in ${propagationMs} ms (refresh every 200 ms)`);
      expect(propagationMs).toBeLessThan(2_000);
      expect(logs.filter((l) => l.event === 'ban' && l.remoteAddress === '203.0.113.9')).toHaveLength(1);
    });

    it('a restarted gateway refuses a banned address from its first connection', async () => {
      const first = await gateway({ threshold: 1 });
      expect(await first.recordFailure('203.0.113.10', 'refused_user')).toBe(true);
      const restarted = await gateway();
      expect(restarted.admit('203.0.113.10')).toEqual({ ok: false, reason: 'banned' });
    });

    it.skipIf(process.env.CAPSTAN_TEST_POSTGRES_URL !== undefined)(
      'with PostgreSQL stopped: nothing throws, nobody new is refused, known bans hold, scoring goes on locally; then it recovers',
      async () => {
        const a = await gateway({ threshold: 3 });
        const b = await gateway({ threshold: 3 });
        await a.recordFailure('203.0.113.20', 'refused_user'); // banned before the outage
        await vi.waitFor(() => expect(b.isBanned('203.0.113.20')).toBe(true), { timeout: 5_000, interval: 20 });
        await server.pause();
        try {
          const started = Date.now();
          expect(await b.recordFailure('203.0.113.21', 'wrong_credential')).toBe(false);
          expect(Date.now() - started).toBeLessThan(3_000); // bounded by storeTimeoutMs, not by PostgreSQL's timeouts
          expect(b.admit('203.0.113.22')).toEqual({ ok: true });
          expect(b.admit('203.0.113.20')).toEqual({ ok: false, reason: 'banned' });
          expect(await b.recordFailure('203.0.113.21', 'wrong_credential')).toBe(false);
          expect(await b.recordFailure('203.0.113.21', 'wrong_credential')).toBe(true);
          expect(b.isBanned('203.0.113.21')).toBe(true);
          expect(b.degraded).toBe(true);
          expect(logs.some((l) => l.event === 'defender_store_failed' && l.err === 'TransientError')).toBe(true);
        } finally {
          await server.resume();
        }
        await vi.waitFor(() => expect(b.degraded).toBe(false), { timeout: 15_000, interval: 100 });
        expect(logs.some((l) => l.event === 'defender_store_recovered')).toBe(true);
        // Shared scoring works again: two points at a and one at b reach the threshold of 3.
        expect(await a.recordFailure('203.0.113.30', 'wrong_credential')).toBe(false);
        expect(await a.recordFailure('203.0.113.30', 'wrong_credential')).toBe(false);
        expect(await b.recordFailure('203.0.113.30', 'wrong_credential')).toBe(true);
      },
      60_000,
    );
  });
});
