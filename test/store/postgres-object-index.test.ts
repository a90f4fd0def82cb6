import { afterAll, beforeAll, describe } from 'vitest';
import type { ObjectIndex } from '../../src/store/packs/index-store.js';
import { PostgresObjectIndex } from '../../src/store/packs/postgres-index.js';
import { objectIndexConformance } from '../conformance/object-index.js';
import { skipNotice } from '../helpers/openssh.js';
import { dropSchema, freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';

/** The object index several gateways share, on a real PostgreSQL, through the ObjectIndex conformance suite (with a second client for the races). */

const unavailable = skipNotice(postgresUnavailable(), 'PostgresObjectIndex');

describe.skipIf(unavailable !== undefined)('PostgresObjectIndex', () => {
  let server: TestPostgres;
  const schemas = new WeakMap<ObjectIndex, string>();
  beforeAll(async () => {
    server = await startPostgres();
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
  });

  objectIndexConformance('PostgresObjectIndex', {
    setup: async () => {
      const schema = freshSchema('idx');
      const index = await PostgresObjectIndex.open({ url: server.url, schema });
      schemas.set(index, schema);
      return index;
    },
    teardown: async (index) => {
      await index.close();
      await dropSchema(server.url, schemas.get(index)!);
    },
    secondClient: (index) => PostgresObjectIndex.open({ url: server.url, schema: schemas.get(index)! }),
  });
});
