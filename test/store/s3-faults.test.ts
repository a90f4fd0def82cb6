import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3ChunkStore, type S3ChunkStoreOptions } from '../../src/store/chunks/s3/index.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { createTree } from '../../src/tree/index.js';
import type { FileCap } from '../../src/cap/index.js';
import {
  createBucket,
  startFaultProxy,
  startSwiftServer,
  stopSwiftServer,
  storeOptions,
  SWIFT_SKIP,
  type FaultProxy,
  type SwiftServer,
} from '../helpers/swift.js';

const BUCKET = 'capstan-faults';
// Many retries: with requests in parallel, one request's attempts can keep
// landing on the proxy's failing counts; ten in a row at 1 in 3 is ~1e-5.
const FAST_RETRY = { retries: 10, initialMs: 5, maxMs: 50 };
let server: SwiftServer | undefined;
let proxy: FaultProxy | undefined;

describe.skipIf(SWIFT_SKIP)('S3ChunkStore under injected faults (proxy in front of a local Swift)', () => {
  beforeAll(async () => {
    server = await startSwiftServer();
    await createBucket(server, BUCKET);
    proxy = await startFaultProxy(server.endpoint);
  }, 60_000);
  afterAll(async () => {
    await proxy?.close();
    await stopSwiftServer(server);
  });
  beforeEach(() => proxy!.reset());

  async function withStore<T>(extra: Partial<S3ChunkStoreOptions>, run: (store: S3ChunkStore) => Promise<T>): Promise<T> {
    const store = new S3ChunkStore({ ...storeOptions(server!, BUCKET, extra), endpoint: proxy!.endpoint });
    try {
      return await run(store);
    } finally {
      await store.close();
    }
  }

  async function roundTrip(store: S3ChunkStore, count: number): Promise<void> {
    const chunks = Array.from({ length: count }, () => new Uint8Array(randomBytes(20_000)));
    const addresses = await Promise.all(chunks.map((c) => store.put(c)));
    const back = await Promise.all(addresses.map((a) => store.get(a)));
    expect(back).toEqual(chunks);
    for (const a of addresses) expect(await store.has(a)).toBe(true);
  }

  it('puts and gets succeed through every third request failing with 503', async () => {
    proxy!.reset({ failEvery: 3, status: 503 });
    await withStore({ retry: FAST_RETRY }, (store) => roundTrip(store, 20));
    expect(proxy!.stats.failed).toBeGreaterThan(20);
  });

  it('and through 500s, 429s and connection resets', async () => {
    proxy!.reset({ failEvery: 4, status: 500, resetEvery: 5 });
    await withStore({ retry: FAST_RETRY }, (store) => roundTrip(store, 20));
    expect(proxy!.stats.resets).toBeGreaterThan(0);
    proxy!.reset({ failEvery: 3, status: 429 });
    await withStore({ retry: FAST_RETRY }, (store) => roundTrip(store, 5));
  });

  it('a listing retries the failed page, not the whole walk', async () => {
    await withStore({ retry: FAST_RETRY, listPageKeys: 5 }, async (store) => {
      for (let i = 0; i < 23; i++) await store.put(new Uint8Array(randomBytes(10)));
      proxy!.reset({ failEvery: 2, status: 503 });
      let n = 0;
      for await (const _ of store.list()) n++;
      expect(n).toBe(23);
      // 5 pages; every even-numbered request fails, so pages 2-5 fail once each.
      expect(proxy!.stats.requests).toBe(9);
    });
  });

  it('a listing whose pages come without NextContinuationToken goes on from the last key (start-after), as some S3 servers need', async () => {
    await withStore({ retry: FAST_RETRY, listPageKeys: 4 }, async (store) => {
      const put = new Set<string>();
      for (let i = 0; i < 11; i++) put.add((await store.put(new Uint8Array(randomBytes(10)))).toString());
      const seen = new Set<string>();
      for await (const address of store.list()) seen.add(address.toString());
      const listed = seen.size;
      proxy!.reset({ rewriteListing: (xml) => xml.replace(/<NextContinuationToken>[^<]*<\/NextContinuationToken>/, '') });
      const again: string[] = [];
      for await (const address of store.list()) again.push(address.toString());
      expect(new Set(again)).toEqual(seen);
      expect(again).toHaveLength(listed);
      for (const a of put) expect(seen.has(a)).toBe(true);
      // One request a page (and perhaps an empty last one): followed, never started over.
      expect(proxy!.stats.requests).toBeGreaterThanOrEqual(Math.ceil(listed / 4));
      expect(proxy!.stats.requests).toBeLessThanOrEqual(Math.ceil(listed / 4) + 1);
    });
  });

  it('a truncated page that gives no way to continue fails the listing at once instead of looping', async () => {
    await withStore({ retry: FAST_RETRY, listPageKeys: 4 }, async (store) => {
      await store.put(new Uint8Array(randomBytes(10)));
      proxy!.reset({ rewriteListing: () => '<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>' });
      const walk = async () => {
        for await (const _ of store.list());
      };
      await expect(walk()).rejects.toThrow(/no way to continue/);
      expect(proxy!.stats.requests).toBe(1);
    });
  });

  it('a backend that keeps failing is TransientError after the last retry, promptly', async () => {
    proxy!.reset({ failEvery: 1, status: 503 });
    const started = Date.now();
    await withStore({ retry: { retries: 3, initialMs: 10, maxMs: 100 } }, async (store) => {
      await expect(store.put(new Uint8Array(10))).rejects.toMatchObject({ name: 'TransientError' });
      await expect(store.get((await import('../../src/store/address.js')).addressOf(new Uint8Array(1)))).rejects.toMatchObject({
        name: 'TransientError',
      });
    });
    expect(proxy!.stats.requests).toBe(8); // 1 + 3 retries, twice
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('an endpoint that never answers times out into TransientError; nothing hangs', async () => {
    proxy!.reset({ delayMs: Infinity });
    const started = Date.now();
    await withStore({ timeoutMs: 300, retry: { retries: 2, initialMs: 10, maxMs: 20 } }, async (store) => {
      await expect(store.put(new Uint8Array(randomBytes(1000)))).rejects.toMatchObject({ name: 'TransientError' });
    });
    expect(proxy!.stats.requests).toBe(3);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('slow answers within the timeout succeed; an abort while waiting is AbortError', async () => {
    proxy!.reset({ delayMs: 200 });
    await withStore({ timeoutMs: 5_000, retry: FAST_RETRY }, async (store) => {
      await roundTrip(store, 3);
      proxy!.reset({ delayMs: Infinity });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await expect(store.put(new Uint8Array(10), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    });
  });

  it('other 4xx answers are never retried', async () => {
    proxy!.reset({ failEvery: 1, status: 400 });
    await withStore({ retry: FAST_RETRY }, async (store) => {
      await expect(store.put(new Uint8Array(10))).rejects.toMatchObject({ name: 'S3ResponseError', status: 400 });
    });
    expect(proxy!.stats.requests).toBe(1);
  });

  it('never has more than `concurrency` requests in flight', async () => {
    proxy!.reset({ delayMs: 20 });
    await withStore({ concurrency: 3, retry: FAST_RETRY }, async (store) => {
      await Promise.all(Array.from({ length: 30 }, () => store.put(new Uint8Array(randomBytes(1000)))));
      expect(store.client.inFlight).toBe(0);
    });
    expect(proxy!.stats.maxInFlight).toBe(3);
  });

  it('an upload onto an S3 store that starts failing for good rejects, and the old directory entry stays intact', async () => {
    const chunkSize = 64 * 1024;
    await withStore({ retry: { retries: 2, initialMs: 5, maxMs: 20 }, timeoutMs: 2_000 }, async (store) => {
      const tree = createTree({ chunks: store, slots: new MemorySlotStore(), chunkSize });
      try {
        const root = tree.createDirectory();
        const dir = tree.directory(await root);
        const upload = async (data: Uint8Array) => {
          const writer = tree.createFileWriter(new Uint8Array(32).fill(1));
          for (let off = 0; off < data.length; off += chunkSize) await writer.write(data.subarray(off, off + chunkSize));
          return writer.finish();
        };
        const v1 = new Uint8Array(randomBytes(5 * chunkSize));
        const first = await upload(v1);
        const now = Date.now();
        await dir.link('f', first.cap, { size: first.size, mtimeMs: now, ctimeMs: now });

        // The second version's first chunks land, then the backend fails for good.
        const writer = tree.createFileWriter(new Uint8Array(32).fill(1));
        await writer.write(new Uint8Array(randomBytes(chunkSize)));
        await writer.write(new Uint8Array(randomBytes(chunkSize)));
        proxy!.reset({ failEvery: 1, status: 503 });
        const started = Date.now();
        const failed = (async () => {
          for (let i = 0; i < 6; i++) await writer.write(new Uint8Array(randomBytes(chunkSize)));
          return writer.finish();
        })();
        await expect(failed).rejects.toMatchObject({ name: 'TransientError' });
        expect(Date.now() - started).toBeLessThan(10_000);

        proxy!.reset();
        const entry = await dir.lookup('f');
        expect(entry?.metadata.size).toBe(v1.length);
        const reader = await tree.openFile(entry!.cap as FileCap);
        expect(Buffer.from(await reader.read(0, v1.length)).equals(Buffer.from(v1))).toBe(true);
      } finally {
        await tree.close();
      }
    });
  });
});
