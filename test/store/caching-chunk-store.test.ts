import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CachingChunkStore } from '../../src/store/chunks/caching.js';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { chunkStoreConformance } from '../conformance/chunk-store.js';

const heldBytes = (store: ChunkStore) => (store as unknown as { chunks: Map<string, Uint8Array> }).chunks;
const innerOf = (store: ChunkStore) => (store as CachingChunkStore).inner;
const dirs = new WeakMap<ChunkStore, string>();

chunkStoreConformance('CachingChunkStore over MemoryChunkStore', {
  setup: async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-cache-'));
    const store = await CachingChunkStore.open(new MemoryChunkStore(), { dir, maxBytes: 1024 * 1024 });
    dirs.set(store, dir);
    return store;
  },
  teardown: async (store) => {
    await store.close();
    await fsp.rm(dirs.get(store)!, { recursive: true, force: true });
  },
  corrupt: async (store, address) => {
    heldBytes(innerOf(store)).get(address.toString())![0]! ^= 0x01;
  },
  truncate: async (store, address) => {
    const key = address.toString();
    heldBytes(innerOf(store)).set(key, heldBytes(innerOf(store)).get(key)!.subarray(1));
  },
  // MemoryChunkStore keeps its contents after close, like a bucket would.
  reopen: async (store) => {
    await store.close();
    const reopened = await CachingChunkStore.open(innerOf(store), { dir: dirs.get(store)!, maxBytes: 1024 * 1024 });
    dirs.set(reopened, dirs.get(store)!);
    return reopened;
  },
});

/** Counts gets that reach the wrapped store. */
class CountingStore extends MemoryChunkStore {
  gets = 0;
  override get(address: ChunkAddress, options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    this.gets += 1;
    return super.get(address, options);
  }
}

describe('CachingChunkStore', () => {
  let dir: string;
  let inner: CountingStore;
  let cache: CachingChunkStore;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-cache-'));
    inner = new CountingStore();
    cache = await CachingChunkStore.open(inner, { dir, maxBytes: 3000 });
  });
  afterEach(async () => {
    await cache.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('serves repeated gets from disk, files named by CID', async () => {
    const data = new Uint8Array(randomBytes(1000));
    const address = await inner.put(data);
    expect(await cache.get(address)).toEqual(data);
    expect(await cache.get(address)).toEqual(data);
    expect(inner.gets).toBe(1);
    expect(await fsp.readdir(dir)).toEqual([address.toString()]);
    expect(cache.cached).toEqual({ chunks: 1, bytes: 1000 });
  });

  it('evicts the least recently used chunks past the size bound', async () => {
    const addresses = [];
    for (let i = 0; i < 3; i++) addresses.push(await inner.put(new Uint8Array(randomBytes(1000))));
    for (const a of addresses) await cache.get(a);
    await cache.get(addresses[0]!); // 0 is now the most recent; 1 is the oldest
    const fourth = await inner.put(new Uint8Array(randomBytes(1000)));
    await cache.get(fourth);
    expect(cache.cached.bytes).toBeLessThanOrEqual(3000);
    expect((await fsp.readdir(dir)).sort()).toEqual([addresses[0]!, addresses[2]!, fourth].map(String).sort());
    inner.gets = 0;
    await cache.get(addresses[1]!);
    expect(inner.gets).toBe(1);
  });

  it('a chunk larger than the bound is served but not cached', async () => {
    const address = await inner.put(new Uint8Array(randomBytes(5000)));
    await cache.get(address);
    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it('a rotten or truncated cache file is dropped and the chunk fetched again', async () => {
    const data = new Uint8Array(randomBytes(1000));
    const address = await inner.put(data);
    await cache.get(address);
    const file = path.join(dir, address.toString());
    const bytes = await fsp.readFile(file);
    bytes[10]! ^= 1;
    await fsp.writeFile(file, bytes);
    expect(await cache.get(address)).toEqual(data);
    expect(inner.gets).toBe(2);
    await fsp.truncate(file, 999);
    expect(await cache.get(address)).toEqual(data);
    expect(inner.gets).toBe(3);
    expect(await cache.get(address)).toEqual(data);
    expect(inner.gets).toBe(3);
  });

  it('has and delete go to the backend; delete drops the cached copy', async () => {
    const address = await inner.put(new Uint8Array(randomBytes(100)));
    await cache.get(address);
    await inner.delete(address); // e.g. another gateway's gc
    expect(await cache.has(address)).toBe(false);
    await cache.delete(address);
    expect(await fsp.readdir(dir)).toEqual([]);
    await expect(cache.get(address)).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('reopening keeps cached files (oldest access first) and removes temp files and strays', async () => {
    const address = await inner.put(new Uint8Array(randomBytes(1000)));
    await cache.get(address);
    await fsp.writeFile(path.join(dir, '.tmp-0123'), 'x');
    await fsp.writeFile(path.join(dir, 'stray'), 'x');
    const reopened = await CachingChunkStore.open(inner, { dir, maxBytes: 3000 });
    expect(reopened.cached).toEqual({ chunks: 1, bytes: 1000 });
    expect(await fsp.readdir(dir)).toEqual([address.toString()]);
    inner.gets = 0;
    await reopened.get(address);
    expect(inner.gets).toBe(0);
    // A smaller bound at open evicts down to it.
    const small = await CachingChunkStore.open(inner, { dir, maxBytes: 10 });
    expect(small.cached).toEqual({ chunks: 0, bytes: 0 });
    expect(await fsp.readdir(dir)).toEqual([]);
  });
});
