import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresUsageLedger, type UsageLedger } from '../../src/quota/index.js';
import { usageLedgerConformance } from '../conformance/usage-ledger.js';
import { skipNotice } from '../helpers/openssh.js';
import { dropSchema, freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const unavailable = skipNotice(postgresUnavailable(), 'PostgresUsageLedger');

describe.skipIf(unavailable !== undefined)('PostgresUsageLedger', () => {
  let server: TestPostgres;
  const schemas = new WeakMap<UsageLedger, string>();
  const open = async (schema: string): Promise<UsageLedger> => {
    const ledger = await PostgresUsageLedger.open({ url: server.url, schema });
    schemas.set(ledger, schema);
    return ledger;
  };
  beforeAll(async () => {
    server = await startPostgres();
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
  });

  usageLedgerConformance('PostgresUsageLedger', {
    setup: () => open(freshSchema('quota')),
    teardown: async (ledger) => {
      await ledger.close();
      await dropSchema(server.url, schemas.get(ledger) ?? '');
    },
    secondClient: (ledger) => PostgresUsageLedger.open({ url: server.url, schema: schemas.get(ledger) ?? '' }),
    reopen: async (ledger) => {
      await ledger.close();
      return open(schemas.get(ledger) ?? '');
    },
  });

  it('refuses bad input with a clear error and keeps serving', async () => {
    const ledger = await open(freshSchema('quota'));
    try {
      await expect(ledger.add('', 1, 1)).rejects.toMatchObject({ name: 'InvalidInputError' });
      await expect(ledger.add('a', 0.5, 1)).rejects.toMatchObject({ name: 'InvalidInputError' });
      await expect(ledger.set('a', { bytes: -1, files: 0, countedAt: 0 })).rejects.toMatchObject({ name: 'InvalidInputError' });
      await ledger.set('a', { bytes: 1, files: 1, countedAt: 1 });
      expect(await ledger.get('a')).toEqual({ bytes: 1, files: 1, countedAt: 1 });
    } finally {
      await ledger.close();
      await dropSchema(server.url, schemas.get(ledger) ?? '');
    }
  });
});
