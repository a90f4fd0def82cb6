import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addressOf } from '../../src/store/address.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { chunkPathIn } from '../../src/store/chunks/fs/fs-layout.js';
import type { ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { chunkStoreConformance } from '../conformance/chunk-store.js';

const roots = new WeakMap<ChunkStore, string>();
const fileOf = (store: ChunkStore, address: Parameters<FsChunkStore['chunkPath']>[0]) => (store as FsChunkStore).chunkPath(address);

chunkStoreConformance('FsChunkStore', {
  setup: async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-fs-chunks-'));
    const store = await FsChunkStore.open(root);
    roots.set(store, root);
    return store;
  },
  teardown: async (store) => {
    await store.close();
    await fsp.rm(roots.get(store)!, { recursive: true, force: true });
  },
  corrupt: async (store, address) => {
    const bytes = await fsp.readFile(fileOf(store, address));
    bytes[bytes.length >> 1]! ^= 0x01;
    await fsp.writeFile(fileOf(store, address), bytes);
  },
  truncate: async (store, address) => {
    const { size } = await fsp.stat(fileOf(store, address));
    await fsp.truncate(fileOf(store, address), size - 1);
  },
  reopen: async (store) => {
    await store.close();
    const reopened = await FsChunkStore.open(roots.get(store)!);
    roots.set(reopened, roots.get(store)!);
    return reopened;
  },
});

describe('FsChunkStore on disk', () => {
  let root: string;
  let store: FsChunkStore;
  beforeEach(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-fs-chunks-'));
    store = await FsChunkStore.open(root);
  });
  afterEach(async () => {
    await store.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
  async function listed(s: FsChunkStore = store): Promise<string[]> {
    const out: string[] = [];
    for await (const address of s.list()) out.push(address.toString());
    return out;
  }

  it('stores a chunk as exactly its bytes under chunks/<next-to-last 2>/<cid> (layout v2), leaving tmp/ empty', async () => {
    const data = bytes(1234, 9);
    const address = await store.put(data);
    const name = address.toString();
    expect(name).toMatch(/^bafkrei[a-z2-7]{52}$/);
    const file = path.join(root, 'chunks', name.slice(-3, -1), name);
    expect(store.chunkPath(address)).toBe(file);
    expect(new Uint8Array(await fsp.readFile(file))).toEqual(data);
    expect(await fsp.readdir(path.join(root, 'tmp'))).toEqual([]);
  });

  it('its I/O threads name and place random chunks as the layout module on this thread does', async () => {
    // The threads run the compiled fs-sync.ts and fs-layout.ts (dist/), this
    // thread the sources: the same address and path for every input.
    for (const size of [0, 1, 37, 4096, 65_537, 1024 * 1024 + 16]) {
      const data = randomBytes(size);
      const address = await store.put(data);
      expect(address.toString()).toBe(addressOf(data).toString());
      const file = chunkPathIn(path.join(root, 'chunks'), address);
      expect((await fsp.readFile(file)).equals(data)).toBe(true);
      expect(Buffer.from(await store.get(address)).equals(data)).toBe(true);
    }
    expect(await fsp.readdir(path.join(root, 'tmp'))).toEqual([]);
  });

  it('reads, lists, dedups, stats and deletes chunks a layout v1 store left one level deeper', async () => {
    const data = bytes(2345, 4);
    const address = await store.put(data);
    const v1 = store.legacyChunkPath(address);
    const name = address.toString();
    expect(v1).toBe(path.join(root, 'chunks', name.slice(-3, -1), name.slice(-5, -3), name));
    await fsp.mkdir(path.dirname(v1), { recursive: true });
    await fsp.rename(store.chunkPath(address), v1);
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    await fsp.utimes(v1, twoDaysAgo, twoDaysAgo);

    expect(await store.get(address)).toEqual(data);
    expect(await store.has(address)).toBe(true);
    expect(await listed()).toEqual([name]);
    expect(await store.usage()).toEqual({ chunks: 1, bytes: 2345 });
    expect((await store.stat(address))?.bytes).toBe(2345);
    // A put of the same bytes finds the v1 copy, refreshes it and writes nothing new.
    await store.put(data);
    expect((await store.stat(address))!.lastPutMs).toBeGreaterThan(twoDaysAgo.getTime());
    await expect(fsp.stat(store.chunkPath(address))).rejects.toMatchObject({ code: 'ENOENT' });
    // A copy in both layouts is listed once.
    await fsp.copyFile(v1, store.chunkPath(address));
    expect(await listed()).toEqual([name]);
    await store.delete(address);
    expect(await store.has(address)).toBe(false);
    await expect(store.get(address)).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('gc deletes an idle v1 chunk, and one it must put back lands in v2', async () => {
    const idle = await store.put(bytes(100, 1));
    const busy = await store.put(bytes(100, 2));
    for (const address of [idle, busy]) {
      const v1 = store.legacyChunkPath(address);
      await fsp.mkdir(path.dirname(v1), { recursive: true });
      await fsp.rename(store.chunkPath(address), v1);
    }
    const old = new Date(Date.now() - 86_400_000);
    await fsp.utimes(store.legacyChunkPath(idle), old, old);
    expect(await store.deleteIfIdleSince(idle, Date.now() - 3_600_000)).toBe(100);
    expect(await store.has(idle)).toBe(false);
    expect(await store.deleteIfIdleSince(busy, Date.now() - 3_600_000)).toBeUndefined();
    expect(await store.get(busy)).toEqual(bytes(100, 2));
  });

  it('a file truncated to nothing is IntegrityError, and putting the bytes again repairs it', async () => {
    const data = bytes(5000, 3);
    const address = await store.put(data);
    await fsp.truncate(store.chunkPath(address), 0);
    await expect(store.get(address)).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: address.toString() });
    await store.put(data);
    expect(await store.get(address)).toEqual(data);
  });

  it('a planted file larger than MAX_CHUNK_BYTES is IntegrityError without being read', async () => {
    const address = await store.put(bytes(10, 1));
    await fsp.truncate(store.chunkPath(address), 64 * 1024 * 1024); // sparse: cheap to make
    await expect(store.get(address)).rejects.toMatchObject({ name: 'IntegrityError' });
  });

  it('a leftover temp file is never listed; open removes it once stale and keeps a fresh one', async () => {
    const address = await store.put(bytes(100, 5));
    const stale = path.join(root, 'tmp', `${address.toString()}.4242.0123456789ab`);
    const fresh = path.join(root, 'tmp', `${address.toString()}.4243.0123456789ab`);
    await fsp.writeFile(stale, bytes(50, 5));
    await fsp.writeFile(fresh, bytes(50, 5));
    const twoMinutesAgo = new Date(Date.now() - 120_000);
    await fsp.utimes(stale, twoMinutesAgo, twoMinutesAgo);
    expect(await listed()).toEqual([address.toString()]);
    expect(await store.usage()).toEqual({ chunks: 1, bytes: 100 });

    const reopened = await FsChunkStore.open(root);
    expect(await fsp.readdir(path.join(root, 'tmp'))).toEqual([path.basename(fresh)]);
    expect(await listed(reopened)).toEqual([address.toString()]);
  });

  it('stray and misplaced files in the shard tree are not listed', async () => {
    const address = await store.put(bytes(100, 6));
    const other = await store.put(bytes(100, 7));
    const shard = path.dirname(store.chunkPath(address));
    await fsp.writeFile(path.join(shard, 'notes.txt'), 'x');
    await fsp.writeFile(path.join(shard, other.toString().toUpperCase()), 'x');
    // A real chunk file in the wrong shard would be listed under an address whose file is elsewhere.
    await fsp.copyFile(store.chunkPath(other), path.join(shard, `${other.toString()}`)).catch(() => undefined);
    await fsp.mkdir(path.join(root, 'chunks', 'zz!'), { recursive: true });
    const names = await listed();
    expect(names.sort()).toEqual([address.toString(), other.toString()].sort());
  });

  it('works with fsync off, and two stores on one root (two processes) can put the same bytes at once', async () => {
    const unsynced = await FsChunkStore.open(root, { fsync: false });
    const data = bytes(300_000, 8);
    const addresses = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? unsynced : store).put(data)));
    expect(new Set(addresses.map(String)).size).toBe(1);
    expect(Buffer.from(await store.get(addresses[0]!)).equals(data)).toBe(true);
    expect(await listed()).toHaveLength(1);
    expect(await fsp.readdir(path.join(root, 'tmp'))).toEqual([]);
  });
});
