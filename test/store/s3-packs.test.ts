import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { S3ChunkStore } from '../../src/store/chunks/s3/index.js';
import type { S3ChunkStoreOptions } from '../../src/store/chunks/s3/s3-chunk-store.js';
import type { ObjectIndex } from '../../src/store/packs/index-store.js';
import { LevelObjectIndex } from '../../src/store/packs/level-index.js';
import { PackChunkStore } from '../../src/store/packs/pack-store.js';
import { PostgresObjectIndex } from '../../src/store/packs/postgres-index.js';
import { ObjectPackSink } from '../../src/store/packs/object-sink.js';
import { S3PackObjects } from '../../src/store/packs/s3-pack-objects.js';
import { chunkStoreConformance } from '../conformance/chunk-store.js';
import { skipNotice } from '../helpers/openssh.js';
import { dropSchema, freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import {
  createBucket,
  startFaultProxy,
  startSwiftServer,
  stopSwiftServer,
  storeOptions,
  SWIFT_SKIP,
  type SwiftServer,
} from '../helpers/swift.js';

/**
 * Storage engine v3 on S3 (docs/spec/packs.md, Several gateways): packs
 * uploaded to a real Swift (s3api), the object index in a real PostgreSQL
 * (shared by gateways) or in a LevelDB; through the ChunkStore conformance
 * suite, then what only shared packs do: one PUT per flush, a second
 * gateway reading the first's objects, a failed upload retried, compaction,
 * objects of the one-object-per-key layout read through and repacked.
 */

const BUCKET = 'capstan-packs';
const skip = SWIFT_SKIP ?? skipNotice(postgresUnavailable(), 'packs on S3 with a PostgreSQL index');

describe.skipIf(skip !== undefined)('packs on S3', () => {
  let swift: SwiftServer;
  let postgres: TestPostgres;
  let dir: string;
  beforeAll(async () => {
    [swift, postgres] = await Promise.all([startSwiftServer(), startPostgres()]);
    await createBucket(swift, BUCKET);
    dir = await mkdtemp(path.join(tmpdir(), 'capstan-s3-packs-'));
  }, 120_000);
  afterAll(async () => {
    await stopSwiftServer(swift);
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  interface Opened {
    s3: S3ChunkStoreOptions;
    schema: string;
    puts: { count: number };
  }
  const opened = new WeakMap<ChunkStore, Opened>();

  /** A gateway's pack store on `s3` (a prefix) and `schema`; counts the PUTs its client sends. */
  async function open(
    s3: S3ChunkStoreOptions,
    schema: string,
    extra: { minSealedAgeMs?: number; now?: () => number; index?: ObjectIndex; packBytes?: number } = {},
  ): Promise<PackChunkStore> {
    const legacy = new S3ChunkStore(s3);
    const puts = { count: 0 };
    const send = legacy.client.send.bind(legacy.client);
    legacy.client.send = (request) => {
      if (request.method === 'PUT') puts.count++;
      return send(request);
    };
    const index = extra.index ?? (await PostgresObjectIndex.open({ url: postgres.url, schema }));
    const sink = new ObjectPackSink({
      objects: new S3PackObjects(legacy.client, legacy.prefix),
      minSealedAgeMs: extra.minSealedAgeMs,
      now: extra.now,
      packBytes: extra.packBytes,
    });
    const store = new PackChunkStore({ sink, index, legacy, dedupAgainstLegacy: false });
    opened.set(store, { s3, schema, puts });
    return store;
  }

  /** Flips a byte of the object inside its pack object, behind the store's back. */
  async function rewriteInPack(
    store: ChunkStore,
    address: ChunkAddress,
    change: (pack: Uint8Array, offset: number, length: number) => Uint8Array,
  ) {
    const packs = store as PackChunkStore;
    await packs.flush();
    const entry = (await packs.index.get(address))!;
    const legacy = new S3ChunkStore(opened.get(store)!.s3);
    const key = `${legacy.prefix}packs/${entry.location.pack}.pack`;
    const res = await legacy.client.send({ method: 'GET', key, maxBodyBytes: 64 << 20 });
    const body = change(new Uint8Array(res.body), entry.location.offset, entry.location.length);
    expect((await legacy.client.send({ method: 'PUT', key, body, maxBodyBytes: 65536 })).status).toBe(200);
    await legacy.close();
  }

  chunkStoreConformance('PackChunkStore (S3 packs, PostgreSQL index)', {
    setup: async () => open(storeOptions(swift, BUCKET), freshSchema('s3p')),
    teardown: async (store) => {
      await store.close();
      await dropSchema(postgres.url, opened.get(store)!.schema);
    },
    corrupt: (store, address) =>
      rewriteInPack(store, address, (pack, offset) => {
        pack[offset]! ^= 1;
        return pack;
      }),
    truncate: (store, address) => rewriteInPack(store, address, (pack, offset, length) => pack.subarray(0, offset + length - 1)),
    reopen: async (store) => {
      const { s3, schema } = opened.get(store)!;
      await store.close();
      return open(s3, schema);
    },
  });

  chunkStoreConformance('PackChunkStore (S3 packs, LevelDB index)', {
    setup: async () => {
      const index = await LevelObjectIndex.openOwned(path.join(dir, randomBytes(6).toString('hex')));
      return open(storeOptions(swift, BUCKET), 'unused', { index });
    },
    teardown: (store) => store.close(),
    corrupt: (store, address) =>
      rewriteInPack(store, address, (pack, offset) => {
        pack[offset]! ^= 1;
        return pack;
      }),
    truncate: (store, address) => rewriteInPack(store, address, (pack, offset, length) => pack.subarray(0, offset + length - 1)),
  });

  it('a flush of many objects is one PUT; a second gateway reads them by ranged GET; a failed upload is retried', async () => {
    const s3 = storeOptions(swift, BUCKET);
    const schema = freshSchema('s3p');
    const a = await open(s3, schema);
    const b = await open(s3, schema);
    try {
      const objects = Array.from({ length: 5 }, (_, i) => randomBytes(100 + i * 5000));
      const putsBefore = opened.get(a)!.puts.count;
      const addresses = [];
      for (const o of objects) addresses.push(await a.put(o));
      await a.flush();
      expect(opened.get(a)!.puts.count - putsBefore).toBe(1);
      for (const [i, address] of addresses.entries()) expect(Buffer.from(await b.get(address)).equals(objects[i]!)).toBe(true);
      // The empty object too, which has no byte range to ask for.
      const empty = await a.put(new Uint8Array(0));
      await a.flush();
      expect((await b.get(empty)).length).toBe(0);
      // Deduplicated across gateways: b stores nothing for bytes a stored.
      const putsB = opened.get(b)!.puts.count;
      await b.put(objects[0]!);
      await b.flush();
      expect(opened.get(b)!.puts.count).toBe(putsB);
    } finally {
      await a.close();
      await b.close();
    }

    // Through a proxy that fails every request for a while: the flush fails, nothing is indexed, the retry lands it.
    const proxy = await startFaultProxy(swift.endpoint);
    const c = await open({ ...s3, endpoint: proxy.endpoint, retry: { retries: 1, initialMs: 5, maxMs: 10 } }, schema);
    try {
      const bytes = randomBytes(3000);
      proxy.reset({ failEvery: 1, status: 503 });
      const address = await c.put(bytes);
      await expect(c.flush()).rejects.toMatchObject({ name: 'TransientError' });
      expect(await c.index.get(address)).toBeUndefined();
      proxy.reset();
      await c.flush();
      expect(await c.index.get(address)).toBeDefined();
      const d = await open(s3, schema);
      expect(Buffer.from(await d.get(address)).equals(bytes)).toBe(true);
      await d.close();
    } finally {
      await c.close();
    }

    // A large upload while every PUT fails: once two packs wait, the next put retries them and fails
    // (the writer hears of it) instead of waiting forever; once S3 is back a flush lands what was put.
    const e = await open({ ...s3, endpoint: proxy.endpoint, retry: { retries: 1, initialMs: 5, maxMs: 10 } }, schema, {
      packBytes: 64 * 1024,
    });
    try {
      proxy.reset({ failEvery: 1, status: 503 });
      const put: { address: Awaited<ReturnType<PackChunkStore['put']>>; bytes: Buffer }[] = [];
      let failure: unknown;
      for (let i = 0; i < 6 && failure === undefined; i++) {
        const bytes = randomBytes(100_000);
        try {
          put.push({ address: await e.put(bytes), bytes });
        } catch (err) {
          failure = err;
        }
      }
      expect(failure).toMatchObject({ name: 'TransientError' });
      proxy.reset();
      await e.flush();
      for (const { address, bytes } of put) expect(Buffer.from(await e.get(address)).equals(bytes)).toBe(true);
    } finally {
      await e.close();
      await proxy.close();
      await dropSchema(postgres.url, schema);
    }
  });

  it('gc and compaction free packs on S3; objects of the old layout are read through and repacked', async () => {
    const s3 = storeOptions(swift, BUCKET);
    const schema = freshSchema('s3p');
    const old = new S3ChunkStore(s3);
    const legacyBytes = randomBytes(2000);
    const legacyAddress = await old.put(legacyBytes);
    await old.close();
    // Swift rounds LastModified up to the second: a clock a minute ahead makes the fresh packs old enough.
    const store = await open(s3, schema, { minSealedAgeMs: 0, now: () => Date.now() + 60_000 });
    try {
      expect(Buffer.from(await store.get(legacyAddress)).equals(legacyBytes)).toBe(true);
      const keep = randomBytes(4000);
      const keepAddress = await store.put(keep);
      const garbage = [];
      for (let i = 0; i < 6; i++) garbage.push(await store.put(randomBytes(8000)));
      await store.flush();
      for (const g of garbage) expect(await store.deleteIfIdleSince(g, Date.now() + 60_000)).toBe(8000);
      const compacted = await store.compact();
      expect(compacted.rewritten).toBe(1);
      expect(Buffer.from(await store.get(keepAddress)).equals(keep)).toBe(true);
      for (const g of garbage) expect(await store.has(g)).toBe(false);

      expect(await store.repack()).toMatchObject({ moved: 1, dropped: 0, damaged: 0 });
      expect((await store.index.get(legacyAddress))?.location.pack).toMatch(/^[0-9a-f]{16}$/);
      const check = new S3ChunkStore(s3);
      expect(await check.has(legacyAddress)).toBe(false);
      await check.close();
      expect(Buffer.from(await store.get(legacyAddress)).equals(legacyBytes)).toBe(true);
    } finally {
      await store.close();
      await dropSchema(postgres.url, schema);
    }
  });
});
