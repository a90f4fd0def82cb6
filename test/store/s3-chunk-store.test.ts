import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../src/config/index.js';
import { openChunkStore } from '../../src/node/open.js';
import { CachingChunkStore } from '../../src/store/chunks/caching.js';
import { S3ChunkStore } from '../../src/store/chunks/s3/index.js';
import type { ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { chunkStoreConformance } from '../conformance/chunk-store.js';
import { createBucket, startSwiftServer, stopSwiftServer, storeOptions, SWIFT_SKIP, type SwiftServer } from '../helpers/swift.js';

const BUCKET = 'capstan-test';
let server: SwiftServer | undefined;

describe.skipIf(SWIFT_SKIP)('S3ChunkStore against a local Swift (s3api)', () => {
  beforeAll(async () => {
    server = await startSwiftServer();
    await createBucket(server, BUCKET);
  }, 60_000);
  afterAll(async () => {
    await stopSwiftServer(server);
  });

  /** Replaces the stored object behind the store's back, as bit rot or a tamperer would. */
  async function overwrite(store: ChunkStore, address: Parameters<S3ChunkStore['keyOf']>[0], change: (b: Uint8Array) => Uint8Array) {
    const s3 = store as S3ChunkStore;
    const bytes = change(await s3.get(address));
    const res = await s3.client.send({ method: 'PUT', key: s3.keyOf(address), body: bytes, maxBodyBytes: 65536 });
    expect(res.status).toBe(200);
  }

  chunkStoreConformance('S3ChunkStore', {
    setup: async () => new S3ChunkStore(storeOptions(server!, BUCKET)),
    teardown: (store) => store.close(),
    corrupt: (store, address) =>
      overwrite(store, address, (b) => {
        b[b.length >> 1]! ^= 1;
        return b;
      }),
    truncate: (store, address) => overwrite(store, address, (b) => b.subarray(0, b.length - 1)),
    reopen: async (store) => {
      const s3 = store as S3ChunkStore;
      await s3.close();
      return new S3ChunkStore({ ...storeOptions(server!, BUCKET), prefix: s3.prefix });
    },
  });

  it('keys objects <prefix>chunks/<a>/<b>/<cid>, and list follows continuation tokens across pages', async () => {
    const store = new S3ChunkStore(storeOptions(server!, BUCKET, { listPageKeys: 50 }));
    try {
      const address = await store.put(randomBytes(100));
      const name = address.toString();
      expect(store.keyOf(address)).toBe(`${store.prefix}chunks/${name.slice(-3, -1)}/${name.slice(-5, -3)}/${name}`);
      // A stray key under chunks/ is skipped, never listed.
      await store.client.send({ method: 'PUT', key: `${store.prefix}chunks/zz/notes.txt`, body: new Uint8Array(3), maxBodyBytes: 65536 });
      const many = 160;
      const puts: Promise<unknown>[] = [];
      for (let i = 0; i < many; i++) puts.push(store.put(randomBytes(8)));
      await Promise.all(puts);
      expect(store.client.inFlight).toBe(0);
      let n = 0;
      for await (const _ of store.list()) n++;
      expect(n).toBe(many + 1);
      expect((await store.usage()).chunks).toBe(many + 1);
    } finally {
      await store.close();
    }
  });

  it('stat answers size and last put time from HEAD, undefined when absent', async () => {
    const store = new S3ChunkStore(storeOptions(server!, BUCKET));
    try {
      const before = Date.now();
      const address = await store.put(randomBytes(1234));
      const stat = await store.stat(address);
      expect(stat?.bytes).toBe(1234);
      expect(stat!.lastPutMs).toBeGreaterThan(before - 2_000);
      expect(stat!.lastPutMs).toBeLessThanOrEqual(Date.now() + 1_000); // whole seconds; Swift rounds up
      await store.delete(address);
      expect(await store.stat(address)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('[storage] backend = s3 opens an S3ChunkStore behind the read cache, with keys from private/s3-credentials', async () => {
    const node = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-s3-node-'));
    try {
      await fsp.mkdir(path.join(node, 'private'));
      await fsp.writeFile(
        path.join(node, 'private/s3-credentials'),
        `[default]\naws_access_key_id = ${server!.accessKeyId}\naws_secret_access_key = ${server!.secretAccessKey}\n`,
      );
      const config = parseConfigText(
        node,
        `[storage]\nbackend = s3\ns3.endpoint = ${server!.endpoint}\ns3.bucket = ${BUCKET}\ns3.prefix = wired/\ns3.cache.size = 1MiB\n`,
      );
      const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
      delete process.env['AWS_ACCESS_KEY_ID'];
      delete process.env['AWS_SECRET_ACCESS_KEY'];
      let store: Awaited<ReturnType<typeof openChunkStore>>;
      try {
        store = await openChunkStore(config);
      } finally {
        if (saved.id !== undefined) process.env['AWS_ACCESS_KEY_ID'] = saved.id;
        if (saved.secret !== undefined) process.env['AWS_SECRET_ACCESS_KEY'] = saved.secret;
      }
      try {
        expect(store).toBeInstanceOf(CachingChunkStore);
        expect((store as CachingChunkStore).inner).toBeInstanceOf(S3ChunkStore);
        const data = new Uint8Array(randomBytes(3000));
        const address = await store.put(data);
        expect(await store.get(address)).toEqual(data);
        expect(await fsp.readdir(path.join(node, 'store/s3-cache'))).toEqual([address.toString()]);
        expect(((store as CachingChunkStore).inner as S3ChunkStore).keyOf(address)).toMatch(/^wired\/chunks\//);
      } finally {
        await store.close();
      }
    } finally {
      await fsp.rm(node, { recursive: true, force: true });
    }
  });

  it('wrong credentials are a permanent S3ResponseError, not retried as transient', async () => {
    const store = new S3ChunkStore(
      storeOptions(server!, BUCKET, { credentials: { accessKeyId: 'test:tester', secretAccessKey: 'wrong' } }),
    );
    try {
      await expect(store.put(randomBytes(10))).rejects.toMatchObject({ name: 'S3ResponseError', status: 403 });
    } finally {
      await store.close();
    }
  });
});
