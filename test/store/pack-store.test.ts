import fs, { promises as fsp } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Level } from 'level';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addressOf } from '../../src/store/address.js';
import type { ChunkAddress } from '../../src/store/chunks/chunk-store.js';
import { CachingChunkStore } from '../../src/store/chunks/caching.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { encodeHeader, objectRecord, slotRecord } from '../../src/store/packs/format.js';
import { packFile } from '../../src/store/packs/pack-files.js';
import { LocalEngine } from '../../src/store/packs/local-engine.js';
import type { PackChunkStore } from '../../src/store/packs/pack-store.js';
import { chunkStoreConformance } from '../conformance/chunk-store.js';
import { slotStoreConformance } from '../conformance/slot-store.js';

/**
 * The embedded default's v3 storage (docs/spec/packs.md): the pack chunk
 * store and the journal slot store of one LocalEngine, through both
 * conformance suites, then what only packs do: rotation, recovery of a torn
 * tail, group commit, deduplication against old copies.
 */

interface Opened {
  engine: LocalEngine;
  dir: string;
}
const opened = new WeakMap<object, Opened>();

async function openEngine(dir: string, extra: Partial<Parameters<typeof LocalEngine.open>[0]> = {}): Promise<LocalEngine> {
  return LocalEngine.open({
    slotsDir: path.join(dir, 'slots'),
    packsDir: path.join(dir, 'packs'),
    legacy: await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false }),
    fsync: false,
    ...extra,
  });
}

/** Holds the engine's object index writes (and so the LevelDB writes after a sync) until release(); writes() counts those started. */
function holdIndexWrites(engine: LocalEngine): { release: () => void; writes: () => number } {
  const index = engine.chunks.index;
  const putMany = index.putMany.bind(index);
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started = 0;
  index.putMany = async (entries, options) => {
    started++;
    await held;
    return putMany(entries, options);
  };
  return { release, writes: () => started };
}

async function freshEngine(): Promise<Opened> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-packs-'));
  return { engine: await openEngine(dir), dir };
}

chunkStoreConformance('PackChunkStore (LocalEngine)', {
  setup: async () => {
    const o = await freshEngine();
    opened.set(o.engine.chunks, o);
    return o.engine.chunks;
  },
  teardown: async (store) => {
    const o = opened.get(store)!;
    await o.engine.close();
    await fsp.rm(o.dir, { recursive: true, force: true });
  },
  corrupt: (store, address) => corruptPacked(store as PackChunkStore, address),
  truncate: (store, address) => truncatePacked(store as PackChunkStore, address),
  reopen: async (store) => {
    const o = opened.get(store)!;
    await o.engine.close();
    const engine = await openEngine(o.dir);
    opened.set(engine.chunks, { engine, dir: o.dir });
    return engine.chunks;
  },
});

/** Flips a byte of the object's bytes in its pack file. */
async function corruptPacked(store: PackChunkStore, address: ChunkAddress): Promise<void> {
  await store.flush();
  const o = opened.get(store)!;
  const entry = (await store.index.get(address))!;
  const fd = await fsp.open(packFile(path.join(o.dir, 'packs'), entry.location.pack), 'r+');
  const b = Buffer.alloc(1);
  await fd.read(b, 0, 1, entry.location.offset);
  b[0] = (b[0] ?? 0) ^ 0x01;
  await fd.write(b, 0, 1, entry.location.offset);
  await fd.close();
}

/** Cuts the object's last byte off its pack file (the conformance suite's chunk is the last object put, so nothing after it is lost). */
async function truncatePacked(store: PackChunkStore, address: ChunkAddress): Promise<void> {
  await store.flush();
  const o = opened.get(store)!;
  const entry = (await store.index.get(address))!;
  await fsp.truncate(packFile(path.join(o.dir, 'packs'), entry.location.pack), entry.location.offset + entry.location.length - 1);
}

// As the S3 backend runs by default: the pack store behind the local read cache (its prefetch passed on).
chunkStoreConformance('CachingChunkStore over PackChunkStore (LocalEngine)', {
  setup: async () => {
    const o = await freshEngine();
    opened.set(o.engine.chunks, o);
    return CachingChunkStore.open(o.engine.chunks, { dir: path.join(o.dir, 'read-cache'), maxBytes: 1024 * 1024 });
  },
  teardown: async (store) => {
    const o = opened.get((store as CachingChunkStore).inner)!;
    await store.close();
    await fsp.rm(o.dir, { recursive: true, force: true });
  },
  corrupt: (store, address) => corruptPacked((store as CachingChunkStore).inner as PackChunkStore, address),
  truncate: (store, address) => truncatePacked((store as CachingChunkStore).inner as PackChunkStore, address),
});

slotStoreConformance('JournalSlotStore (LocalEngine)', {
  history: true,
  setup: async () => {
    const o = await freshEngine();
    opened.set(o.engine.slots, o);
    return o.engine.slots;
  },
  teardown: async (store) => {
    const o = opened.get(store)!;
    await o.engine.close();
    await fsp.rm(o.dir, { recursive: true, force: true });
  },
  reopen: async (store) => {
    const o = opened.get(store)!;
    await o.engine.close();
    const engine = await openEngine(o.dir);
    opened.set(engine.slots, { engine, dir: o.dir });
    return engine.slots;
  },
});

describe('LocalEngine', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-engine-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const si = (n: number): Uint8Array => new Uint8Array(32).fill(n);
  const packsIn = async (): Promise<string[]> => (await fsp.readdir(path.join(dir, 'packs'))).filter((f) => f.endsWith('.pack'));

  it('rotates packs by size; every object stays readable, before and after a reopen', async () => {
    let engine = await openEngine(dir, { packBytes: 64 * 1024 });
    const objects = Array.from({ length: 40 }, (_, i) => new Uint8Array(10_000).fill(i));
    const addresses = await Promise.all(objects.map((o) => engine.chunks.put(o)));
    await engine.chunks.flush();
    expect((await packsIn()).length).toBeGreaterThan(4);
    for (const [i, a] of addresses.entries()) expect(Buffer.from(await engine.chunks.get(a)).equals(Buffer.from(objects[i]!))).toBe(true);
    await engine.close();
    engine = await openEngine(dir, { packBytes: 64 * 1024 });
    for (const [i, a] of addresses.entries()) expect(Buffer.from(await engine.chunks.get(a)).equals(Buffer.from(objects[i]!))).toBe(true);
    await engine.close();
  });

  it('recovers a pack a crash left open: whole records applied, the torn tail cut, the pack sealed', async () => {
    // What a crash leaves: a pack with a header, an object, a slot swap, and half a record; an empty LevelDB.
    await fsp.mkdir(path.join(dir, 'packs'), { recursive: true });
    const pack = '0123456789abcdef';
    const object = new Uint8Array(5000).fill(7);
    const address = addressOf(object);
    const records = [objectRecord(address, object), slotRecord(si(1), 3n, Uint8Array.of(1, 2, 3))];
    const torn = objectRecord(addressOf(Uint8Array.of(9)), Uint8Array.of(9));
    const body = Buffer.concat([encodeHeader(Buffer.from(pack, 'hex')), ...records.flatMap((r) => r.parts)]);
    const tornBytes = Buffer.concat(torn.parts).subarray(0, 7);
    await fsp.writeFile(packFile(path.join(dir, 'packs'), pack), Buffer.concat([body, tornBytes]));

    const engine = await openEngine(dir);
    expect(Buffer.from(await engine.chunks.get(address)).equals(Buffer.from(object))).toBe(true);
    expect(await engine.slots.get(si(1))).toEqual({ seq: 3n, record: Uint8Array.of(1, 2, 3) });
    // The torn record is gone and the pack now ends with a trailer and footer.
    const sealed = await fsp.readFile(packFile(path.join(dir, 'packs'), pack));
    expect(sealed.subarray(0, body.length).equals(body)).toBe(true);
    expect(sealed.subarray(-4).toString('latin1')).toBe('CSPT');
    await engine.close();
  });

  it('recovers an open pack that ends in zeros written ahead (the journal does that for small commits): cut there, sealed', async () => {
    await fsp.mkdir(path.join(dir, 'packs'), { recursive: true });
    const pack = 'fedcba9876543210';
    const object = new Uint8Array(3000).fill(5);
    const address = addressOf(object);
    const records = [objectRecord(address, object), slotRecord(si(6), 2n, Uint8Array.of(4, 5))];
    const body = Buffer.concat([encodeHeader(Buffer.from(pack, 'hex')), ...records.flatMap((r) => r.parts)]);
    await fsp.writeFile(packFile(path.join(dir, 'packs'), pack), Buffer.concat([body, Buffer.alloc(1024 * 1024)]));

    const engine = await openEngine(dir);
    expect(Buffer.from(await engine.chunks.get(address)).equals(Buffer.from(object))).toBe(true);
    expect(await engine.slots.get(si(6))).toEqual({ seq: 2n, record: Uint8Array.of(4, 5) });
    const sealed = await fsp.readFile(packFile(path.join(dir, 'packs'), pack));
    expect(sealed.subarray(0, body.length).equals(body)).toBe(true);
    expect(sealed.length).toBeLessThan(body.length + 1024);
    expect(sealed.subarray(-4).toString('latin1')).toBe('CSPT');
    await engine.close();
  });

  it('small synced commits write zeros ahead of the active pack, once for many commits; sealing cuts them, and every object reads back', async () => {
    const engine = await openEngine(dir, { fsync: true });
    const objects = Array.from({ length: 40 }, (_, i) => new Uint8Array(4000).fill(i));
    const originalWritev = fs.writevSync;
    let zeroWrites = 0;
    fs.writevSync = (fd, buffers, position) => {
      if (buffers.every((b) => (b as Uint8Array).every((byte) => byte === 0))) zeroWrites++;
      return originalWritev(fd, buffers, position);
    };
    syncBuiltinESMExports();
    try {
      for (const [i, object] of objects.entries()) {
        await engine.chunks.put(object);
        await engine.slots.compareAndSwap(si(100 + i), null, { seq: 1n, record: Uint8Array.of(i) });
      }
    } finally {
      fs.writevSync = originalWritev;
      syncBuiltinESMExports();
    }
    // 40 commits of about 4 KiB stay within the first 1 MiB written ahead: the zeros are written once, not per commit.
    expect(zeroWrites).toBe(1);
    const [active] = await packsIn();
    const ahead = await fsp.readFile(path.join(dir, 'packs', active!));
    // 40 commits of about 4 KiB each, in a file that already reaches past 1 MiB: zeros after the records.
    expect(ahead.length).toBeGreaterThanOrEqual(1024 * 1024);
    expect(ahead.subarray(-4096).every((b) => b === 0)).toBe(true);
    await engine.close();
    const sealed = await fsp.readFile(path.join(dir, 'packs', active!));
    expect(sealed.length).toBeLessThan(200 * 1024);
    expect(sealed.subarray(-4).toString('latin1')).toBe('CSPT');
    const again = await openEngine(dir);
    for (const [i, object] of objects.entries()) {
      expect(Buffer.from(await again.chunks.get(addressOf(object))).equals(Buffer.from(object))).toBe(true);
      expect(await again.slots.get(si(100 + i))).toEqual({ seq: 1n, record: Uint8Array.of(i) });
    }
    await again.close();
  });

  it('a newer slot swap in the journal wins over an older one in LevelDB; an older one does not', async () => {
    let engine = await openEngine(dir);
    await engine.slots.compareAndSwap(si(2), null, { seq: 1n, record: Uint8Array.of(1) });
    await engine.slots.compareAndSwap(si(2), 1n, { seq: 2n, record: Uint8Array.of(2) });
    await engine.close();
    engine = await openEngine(dir);
    expect(await engine.slots.get(si(2))).toEqual({ seq: 2n, record: Uint8Array.of(2) });
    await engine.close();
  });

  it('concurrent swaps and flushes share fdatasyncs (group commit)', async () => {
    const engine = await openEngine(dir, { fsync: true });
    // A small sync runs on the event loop (fdatasyncSync), a big one through the FileHandle: count both.
    const proto = Object.getPrototypeOf(await fsp.open(path.join(dir, 'x'), 'w')) as { datasync(): Promise<void> };
    let syncs = 0;
    const original = proto.datasync;
    const originalSync = fs.fdatasyncSync;
    proto.datasync = function (this: unknown) {
      syncs++;
      return original.call(this);
    };
    fs.fdatasyncSync = (fd) => {
      syncs++;
      originalSync(fd);
    };
    syncBuiltinESMExports();
    try {
      const before = syncs;
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          await engine.chunks.put(new Uint8Array(1000).fill(i));
          await engine.slots.compareAndSwap(si(10 + i), null, { seq: 1n, record: Uint8Array.of(i) });
        }),
      );
      // 50 commits; with one sync each there would be 50 (plus the pack's creation). Some there must be.
      expect(syncs - before).toBeGreaterThan(0);
      expect(syncs - before).toBeLessThan(25);
    } finally {
      proto.datasync = original;
      fs.fdatasyncSync = originalSync;
      syncBuiltinESMExports();
      await engine.close();
    }
  });

  it("a small commit is one writev: its records are copied at put (the caller's buffer is free at once) and written with its sync", async () => {
    const engine = await openEngine(dir, { fsync: true });
    const originalWritev = fs.writevSync;
    let writes = 0;
    fs.writevSync = (fd, buffers, position) => {
      // Zeros written ahead of the records (see the test above) are not a commit's write.
      if (buffers.some((b) => (b as Uint8Array).some((byte) => byte !== 0))) writes++;
      return originalWritev(fd, buffers, position);
    };
    syncBuiltinESMExports();
    try {
      // The first commit creates the pack file.
      await engine.chunks.put(new Uint8Array(100).fill(200));
      await engine.slots.compareAndSwap(si(60), null, { seq: 1n, record: Uint8Array.of(1) });
      writes = 0;
      const buffer = new Uint8Array(16 * 1024).fill(1);
      const chunk = await engine.chunks.put(buffer);
      buffer.fill(2);
      const manifest = await engine.chunks.put(new Uint8Array(300).fill(3));
      expect(writes).toBe(0);
      expect(Buffer.from(await engine.chunks.get(chunk)).equals(Buffer.alloc(16 * 1024, 1))).toBe(true);
      await engine.slots.compareAndSwap(si(61), null, { seq: 1n, record: Uint8Array.of(2) });
      expect(writes).toBe(1);

      // A large object is not copied: it goes to the file before its put resolves.
      const large = new Uint8Array(200 * 1024).fill(9);
      await engine.chunks.put(large);
      const [active] = await packsIn();
      expect((await fsp.readFile(path.join(dir, 'packs', active!))).includes(Buffer.from(large))).toBe(true);
      await engine.close();
      const again = await openEngine(dir);
      expect(Buffer.from(await again.chunks.get(chunk)).equals(Buffer.alloc(16 * 1024, 1))).toBe(true);
      expect(Buffer.from(await again.chunks.get(manifest)).equals(Buffer.alloc(300, 3))).toBe(true);
      expect(await again.slots.get(si(61))).toEqual({ seq: 1n, record: Uint8Array.of(2) });
      await again.close();
    } finally {
      fs.writevSync = originalWritev;
      syncBuiltinESMExports();
    }
  });

  it('a swap resolves once durable, before its LevelDB writes: get, list, the objects and a later snapshot see it meanwhile', async () => {
    const engine = await openEngine(dir, { deferWritesMs: 60_000 });
    const db = levelOf(engine);
    try {
      const address = await engine.chunks.put(Uint8Array.of(1, 2, 3));
      await engine.slots.compareAndSwap(si(3), null, { seq: 1n, record: Uint8Array.of(7) });
      await engine.chunks.settled();
      // Resolved, and neither the object's index entry nor the slot is in LevelDB yet.
      expect(await db.get(si(3))).toBeUndefined();
      expect(await engine.chunks.index.get(address)).toBeUndefined();
      expect(await engine.chunks.get(address)).toEqual(Uint8Array.of(1, 2, 3));
      expect(await engine.chunks.has(address)).toBe(true);
      expect(await engine.slots.get(si(3))).toEqual({ seq: 1n, record: Uint8Array.of(7) });
      const listed: string[] = [];
      for await (const key of engine.slots.list()) listed.push(Buffer.from(key).toString('hex'));
      expect(listed).toContain(Buffer.from(si(3)).toString('hex'));
      // The next swap of the slot compares against the durable one.
      await expect(engine.slots.compareAndSwap(si(3), null, { seq: 1n, record: Uint8Array.of(8) })).rejects.toThrow(/expected seq/);
      // A pin writes the swaps first, so a snapshot taken after the swap resolved holds it.
      const history = engine.slots.history;
      const p = await history.pin(si(3), 1);
      expect(await db.get(si(3))).toBeDefined();
      expect(await history.getAt(si(3), p.epoch)).toEqual({ seq: 1n, record: Uint8Array.of(7) });
    } finally {
      await engine.close();
    }
    // And after a restart, from LevelDB.
    const again = await openEngine(dir);
    expect(await again.slots.get(si(3))).toEqual({ seq: 1n, record: Uint8Array.of(7) });
    await again.close();
  });

  it('the index entries of several commits are written together, once the deferral ends', async () => {
    const engine = await openEngine(dir, { deferWritesMs: 60_000 });
    const index = engine.chunks.index;
    const putMany = index.putMany.bind(index);
    const batches: number[] = [];
    index.putMany = async (entries, options) => {
      batches.push(entries.length);
      return putMany(entries, options);
    };
    try {
      const addresses = [];
      for (let i = 0; i < 5; i++) {
        addresses.push(await engine.chunks.put(Uint8Array.of(i, 1)));
        await engine.slots.compareAndSwap(si(20 + i), null, { seq: 1n, record: Uint8Array.of(i) });
      }
      await engine.chunks.settled();
      expect(batches).toEqual([]);
      await engine.chunks.writeDeferredIndex();
      expect(batches).toEqual([5]);
      for (const address of addresses) expect(await index.get(address)).toBeDefined();
    } finally {
      await engine.close();
    }
  });

  it('a swap waits for the LevelDB writes queued before it, so they never fall further behind', async () => {
    const engine = await openEngine(dir, { deferWritesMs: 60_000 });
    const { release, writes } = holdIndexWrites(engine);
    try {
      await engine.chunks.put(Uint8Array.of(9));
      await engine.slots.compareAndSwap(si(5), null, { seq: 1n, record: Uint8Array.of(1) });
      const written = engine.chunks.writeDeferredIndex();
      let second = false;
      const swap = engine.slots.compareAndSwap(si(6), null, { seq: 1n, record: Uint8Array.of(2) }).then(() => {
        second = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(writes()).toBe(1);
      expect(second).toBe(false);
      release();
      await written;
      await swap;
      expect(await engine.slots.get(si(6))).toEqual({ seq: 1n, record: Uint8Array.of(2) });
    } finally {
      release();
      await engine.close();
    }
  });

  it('a LevelDB write failing after a swap resolved fails every later commit, is logged once and stays reported; a restart recovers the swap from the journal', async () => {
    const events: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => events.push(JSON.parse(line).event) });
    const engine = await openEngine(dir, { logger });
    expect(engine.chunks.applyFailure).toBeUndefined();
    const index = engine.chunks.index;
    const putMany = index.putMany.bind(index);
    index.putMany = async () => {
      throw new Error('disk full');
    };
    await engine.chunks.put(Uint8Array.of(4, 5, 6));
    // Durable in the journal: acknowledged, whatever happens to the LevelDB write after it.
    await engine.slots.compareAndSwap(si(4), null, { seq: 1n, record: Uint8Array.of(1) });
    await expect(engine.chunks.writeDeferredIndex()).rejects.toThrow(/applying durable records/);
    await expect(engine.chunks.settled()).rejects.toThrow(/applying durable records/);
    await expect(engine.slots.compareAndSwap(si(4), 1n, { seq: 2n, record: Uint8Array.of(2) })).rejects.toThrow(/applying durable records/);
    await expect(engine.chunks.flush()).rejects.toThrow(/applying durable records/);
    expect(engine.chunks.applyFailure?.message).toMatch(/applying durable records/);
    expect(events.filter((e) => e === 'commit_apply_failed')).toHaveLength(1);
    index.putMany = putMany;
    await engine.close();
    const again = await openEngine(dir);
    expect(await again.slots.get(si(4))).toEqual({ seq: 1n, record: Uint8Array.of(1) });
    expect(await again.chunks.get(addressOf(Uint8Array.of(4, 5, 6)))).toEqual(Uint8Array.of(4, 5, 6));
    await again.close();
  });

  it('a journal write failing (a full disk) breaks the journal: logged once, the commit fault /healthz reports, every later commit refused; a restart serves what was acknowledged', async () => {
    const events: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => events.push(JSON.parse(line).event) });
    const engine = await openEngine(dir, { logger, fsync: true });
    const before = await engine.chunks.put(Uint8Array.of(7, 8, 9));
    await engine.slots.compareAndSwap(si(70), null, { seq: 1n, record: Uint8Array.of(1) });
    expect(engine.commitFault).toBeUndefined();
    const originalWritev = fs.writevSync;
    fs.writevSync = () => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    };
    syncBuiltinESMExports();
    try {
      await engine.chunks.put(Uint8Array.of(1, 2, 3));
      await expect(engine.slots.compareAndSwap(si(70), 1n, { seq: 2n, record: Uint8Array.of(2) })).rejects.toThrow(
        /the journal failed: ENOSPC/,
      );
      expect(engine.commitFault?.message).toMatch(/the journal failed: ENOSPC/);
      // Broken for good in this process: space coming back does not make a later commit land half-known.
      fs.writevSync = originalWritev;
      syncBuiltinESMExports();
      await expect(engine.chunks.put(new Uint8Array(100).fill(4))).rejects.toThrow(/the journal failed/);
      await expect(engine.slots.compareAndSwap(si(71), null, { seq: 1n, record: Uint8Array.of(3) })).rejects.toThrow(/the journal failed/);
      expect(events.filter((e) => e === 'journal_failed')).toHaveLength(1);
      expect(await engine.slots.get(si(70))).toEqual({ seq: 1n, record: Uint8Array.of(1) });
      expect(await engine.chunks.get(before)).toEqual(Uint8Array.of(7, 8, 9));
    } finally {
      fs.writevSync = originalWritev;
      syncBuiltinESMExports();
      await engine.close();
    }
    const again = await openEngine(dir);
    expect(again.commitFault).toBeUndefined();
    expect(await again.slots.get(si(70))).toEqual({ seq: 1n, record: Uint8Array.of(1) });
    expect(await again.slots.get(si(71))).toBeUndefined();
    expect(await again.chunks.get(before)).toEqual(Uint8Array.of(7, 8, 9));
    await again.slots.compareAndSwap(si(70), 1n, { seq: 2n, record: Uint8Array.of(2) });
    expect(await again.slots.get(si(70))).toEqual({ seq: 2n, record: Uint8Array.of(2) });
    await again.close();
  });

  it('a failed sync cuts the pack back to its last sync: a commit told it failed is not replayed at the next start, though its records were written whole', async () => {
    const events: { event: string; tailCut?: boolean }[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => events.push(JSON.parse(line)) });
    const engine = await openEngine(dir, { logger, fsync: true });
    await engine.slots.compareAndSwap(si(80), null, { seq: 1n, record: Uint8Array.of(1) });
    const chunk = await engine.chunks.put(new Uint8Array(2000).fill(6));
    const originalSync = fs.fdatasyncSync;
    let writes = 0;
    const originalWritev = fs.writevSync;
    fs.writevSync = (fd, buffers, position) => {
      writes++;
      return originalWritev(fd, buffers, position);
    };
    let failed = 0;
    fs.fdatasyncSync = (fd) => {
      // The commit's sync fails, once; the sync of the cut after it goes through.
      if (failed++ === 0) throw Object.assign(new Error('i/o error'), { code: 'EIO' });
      originalSync(fd);
    };
    syncBuiltinESMExports();
    try {
      await expect(engine.slots.compareAndSwap(si(80), 1n, { seq: 2n, record: Uint8Array.of(2) })).rejects.toThrow(
        /the journal failed: EIO/,
      );
      expect(writes).toBeGreaterThan(0); // the commit's records reached the file before its sync failed
    } finally {
      fs.fdatasyncSync = originalSync;
      fs.writevSync = originalWritev;
      syncBuiltinESMExports();
      await engine.close();
    }
    expect(events.filter((e) => e.event === 'journal_failed').map((e) => e.tailCut)).toEqual([true]);
    const again = await openEngine(dir);
    expect(await again.slots.get(si(80))).toEqual({ seq: 1n, record: Uint8Array.of(1) });
    expect(await again.chunks.has(chunk)).toBe(false); // put with the failed commit, never acknowledged
    await again.close();
  });

  it('a disk too full for the zeros written ahead still takes a small commit: the zeros are only a saving', async () => {
    const engine = await openEngine(dir, { fsync: true });
    const originalWritev = fs.writevSync;
    fs.writevSync = (fd, buffers, position) => {
      if (buffers.every((b) => (b as Uint8Array).every((byte) => byte === 0)))
        throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      return originalWritev(fd, buffers, position);
    };
    syncBuiltinESMExports();
    try {
      const chunk = await engine.chunks.put(new Uint8Array(5000).fill(7));
      await engine.slots.compareAndSwap(si(90), null, { seq: 1n, record: Uint8Array.of(1) });
      expect(engine.commitFault).toBeUndefined();
      await engine.close();
      const again = await openEngine(dir);
      expect(await again.slots.get(si(90))).toEqual({ seq: 1n, record: Uint8Array.of(1) });
      expect(Buffer.from(await again.chunks.get(chunk)).equals(Buffer.alloc(5000, 7))).toBe(true);
      await again.close();
    } finally {
      fs.writevSync = originalWritev;
      syncBuiltinESMExports();
    }
  });

  it('deduplicates against a fresh copy, stores an old one again (so gc never frees what a put relied on)', async () => {
    let clock = Date.UTC(2026, 0, 1);
    const engine = await openEngine(dir, { now: () => clock });
    const store = engine.chunks;
    const data = new Uint8Array(3000).fill(5);
    const address = await store.put(data);
    await store.flush();
    const first = (await store.index.get(address))!.location;
    await store.put(data);
    await store.flush();
    expect((await store.index.get(address))!.location).toEqual(first);
    clock += 13 * 3600 * 1000; // more than half the default 24 h grace later
    await store.put(data);
    await store.flush();
    expect((await store.index.get(address))!.location).not.toEqual(first);
    await engine.close();
  });

  /** The engine's LevelDB (the object index shares it with the slots and the marks). */
  const levelOf = (engine: LocalEngine): Level<Uint8Array, Uint8Array> =>
    (engine.chunks.index as unknown as { db: Level<Uint8Array, Uint8Array> }).db;
  const marks = async (engine: LocalEngine): Promise<number> => {
    let n = 0;
    for await (const _ of levelOf(engine).keys({ gte: Uint8Array.of(0x70), lt: Uint8Array.of(0x71) })) n++;
    return n;
  };

  it('durable commits are written to LevelDB together, later; a pack is marked applied only once the index entries and swaps it holds are', async () => {
    const engine = await openEngine(dir, { packBytes: 64 * 1024, deferWritesMs: 60_000 });
    try {
      const db = levelOf(engine);
      const address = await engine.chunks.put(Uint8Array.of(9, 9));
      await engine.slots.compareAndSwap(si(9), null, { seq: 1n, record: Uint8Array.of(9) });
      await engine.slots.compareAndSwap(si(10), null, { seq: 1n, record: Uint8Array.of(10) });
      await engine.chunks.settled();
      // Acknowledged and answered from memory, not in LevelDB yet.
      expect(await engine.slots.get(si(9))).toEqual({ seq: 1n, record: Uint8Array.of(9) });
      expect(await db.get(si(9))).toBeUndefined();
      expect(await engine.chunks.index.get(address)).toBeUndefined();
      expect(await marks(engine)).toBe(0);
      // Filling the pack seals it: its mark comes with the swaps it holds.
      for (let i = 0; i < 5; i++) await engine.chunks.put(new Uint8Array(20_000).fill(i));
      await engine.chunks.flush();
      await engine.chunks.settled();
      expect(await marks(engine)).toBeGreaterThan(0);
      expect(await db.get(si(9))).toBeDefined();
      expect(await db.get(si(10))).toBeDefined();
      expect(await engine.chunks.index.get(address)).toBeDefined();
    } finally {
      await engine.close();
    }
  });

  it('several deferred swaps of one slot, written in one batch, keep the version a snapshot pinned', async () => {
    const engine = await openEngine(dir, { deferWritesMs: 60_000 });
    try {
      const history = engine.slots.history;
      await engine.slots.compareAndSwap(si(7), null, { seq: 1n, record: Uint8Array.of(1) });
      const first = await history.pin(si(7), 1);
      for (let seq = 2n; seq <= 4n; seq++) {
        await engine.slots.compareAndSwap(si(7), seq - 1n, { seq, record: Uint8Array.of(Number(seq)) });
      }
      const second = await history.pin(si(7), 2);
      expect(await history.getAt(si(7), first.epoch)).toEqual({ seq: 1n, record: Uint8Array.of(1) });
      expect(await history.getAt(si(7), second.epoch)).toEqual({ seq: 4n, record: Uint8Array.of(4) });
      await engine.slots.compareAndSwap(si(7), 4n, { seq: 5n, record: Uint8Array.of(5) });
      await engine.slots.writeDeferred();
      expect(await history.getAt(si(7), second.epoch)).toEqual({ seq: 4n, record: Uint8Array.of(4) });
      expect(await history.getAt(si(7), first.epoch)).toEqual({ seq: 1n, record: Uint8Array.of(1) });
    } finally {
      await engine.close();
    }
    const again = await openEngine(dir);
    expect(await again.slots.get(si(7))).toEqual({ seq: 5n, record: Uint8Array.of(5) });
    await again.close();
  });

  it('a deferred swap write that fails is a failed apply: later commits are refused, and a restart recovers the swap from the journal', async () => {
    const engine = await openEngine(dir, { deferWritesMs: 5 });
    const db = levelOf(engine);
    const batch = db.batch.bind(db);
    // Slot keys are the bare 32-byte storage indexes: only the swaps' writes fail.
    db.batch = ((ops: { key: Uint8Array }[], options: object) =>
      ops.some((op) => op.key.length === 32) ? Promise.reject(new Error('disk full')) : batch(ops as never, options as never)) as never;
    await engine.slots.compareAndSwap(si(8), null, { seq: 1n, record: Uint8Array.of(1) });
    await expect(engine.slots.writeDeferred()).rejects.toThrow(/applying durable records/);
    await expect(engine.slots.compareAndSwap(si(8), 1n, { seq: 2n, record: Uint8Array.of(2) })).rejects.toThrow(/applying durable records/);
    expect(engine.chunks.applyFailure?.message).toMatch(/applying durable records/);
    db.batch = batch;
    await engine.close();
    const again = await openEngine(dir);
    expect(await again.slots.get(si(8))).toEqual({ seq: 1n, record: Uint8Array.of(1) });
    await again.close();
  });

  it('a clean stop marks every pack applied: the next open replays none', async () => {
    let engine = await openEngine(dir, { packBytes: 64 * 1024 });
    for (let i = 0; i < 10; i++) await engine.chunks.put(new Uint8Array(20_000).fill(i));
    await engine.slots.compareAndSwap(si(3), null, { seq: 1n, record: Uint8Array.of(1) });
    await engine.close();
    const events: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (line: string) => events.push(JSON.parse(line).event) });
    engine = await openEngine(dir, { logger });
    expect(events).not.toContain('pack_recovered');
    expect(await engine.slots.get(si(3))).toEqual({ seq: 1n, record: Uint8Array.of(1) });
    await engine.close();
  });

  it("dedup refreshes an object's age; gc deletes only idle objects; compaction frees their packs and keeps the live", async () => {
    let clock = Date.UTC(2026, 0, 1);
    let engine = await openEngine(dir, { now: () => clock, packBytes: 64 * 1024 });
    const store = engine.chunks;
    const objects = Array.from({ length: 12 }, (_, i) => new Uint8Array(20_000).fill(i + 1));
    const addresses = [];
    for (const o of objects) addresses.push(await store.put(o));
    await store.flush();
    clock += 2 * 3600 * 1000;
    await store.put(objects[0]!); // deduplicated: its age starts again
    const cutoff = clock - 3600 * 1000;
    expect(await store.deleteIfIdleSince(addresses[0]!, cutoff)).toBeUndefined();
    // Every other object but the last two goes.
    for (const a of addresses.slice(1, 10)) expect(await store.deleteIfIdleSince(a, cutoff)).toBe(20_000);
    expect(await store.deleteIfIdleSince(addresses[1]!, cutoff)).toBeUndefined();
    expect(await store.has(addresses[1]!)).toBe(false);
    const packsBefore = (await fsp.readdir(path.join(dir, 'packs'))).length;
    const dry = await store.compact({ dryRun: true });
    expect(dry.removed + dry.rewritten).toBeGreaterThan(0);
    expect((await fsp.readdir(path.join(dir, 'packs'))).length).toBe(packsBefore);
    const done = await store.compact();
    expect(done).toEqual(dry);
    expect((await fsp.readdir(path.join(dir, 'packs'))).length).toBeLessThan(packsBefore);
    for (const i of [0, 10, 11]) expect(Buffer.from(await store.get(addresses[i]!)).equals(Buffer.from(objects[i]!))).toBe(true);
    await engine.close();
    // And after a reopen (the moves were made durable before the old packs went).
    engine = await openEngine(dir);
    for (const i of [0, 10, 11]) expect(Buffer.from(await engine.chunks.get(addresses[i]!)).equals(Buffer.from(objects[i]!))).toBe(true);
    expect(await engine.chunks.has(addresses[5]!)).toBe(false);
    await engine.close();
  });

  it("a sequential reader's hint is one index getMany instead of a get a chunk; one that compaction made stale still reads right", async () => {
    let clock = Date.UTC(2026, 0, 1);
    const engine = await openEngine(dir, { now: () => clock, packBytes: 64 * 1024 });
    const store = engine.chunks;
    const objects = Array.from({ length: 12 }, (_, i) => new Uint8Array(20_000).fill(i + 1));
    const addresses: ChunkAddress[] = [];
    for (const o of objects) addresses.push(await store.put(o));
    await store.flush();
    const index = store.index;
    const calls = { get: 0, getMany: 0 };
    const [get, getMany] = [index.get.bind(index), index.getMany.bind(index)];
    index.get = (...args) => {
      calls.get++;
      return get(...args);
    };
    index.getMany = (...args) => {
      calls.getMany++;
      return getMany(...args);
    };
    const readsBack = async (i: number) => expect(Buffer.from(await store.get(addresses[i]!)).equals(Buffer.from(objects[i]!))).toBe(true);

    store.prefetch(addresses);
    for (let i = 0; i < objects.length; i++) await readsBack(i);
    expect(calls).toEqual({ get: 0, getMany: 1 });
    // Taken once: a second read asks the index.
    await readsBack(3);
    expect(calls.get).toBe(1);

    // Hinted, then gc deletes most objects and compaction moves the live ones out of their packs.
    store.prefetch(addresses);
    await new Promise((resolve) => setTimeout(resolve, 20));
    clock += 2 * 3600 * 1000;
    for (const a of addresses.slice(1, 10)) expect(await store.deleteIfIdleSince(a, clock - 3600 * 1000)).toBe(20_000);
    const packs = new Set((await fsp.readdir(path.join(dir, 'packs'))).filter((f) => f.endsWith('.pack')));
    expect((await store.compact()).rewritten).toBeGreaterThan(0);
    const gone = [...packs].filter((f) => !fs.existsSync(path.join(dir, 'packs', f)));
    expect(gone.length).toBeGreaterThan(0);
    calls.get = 0;
    for (const i of [0, 10, 11]) await readsBack(i);
    // Object 0's hint named a pack compaction removed: the index was asked again.
    expect(calls.get).toBeGreaterThan(0);
    for (const i of [1, 5, 9]) await expect(store.get(addresses[i]!)).rejects.toMatchObject({ name: 'NotFoundError' });
    await engine.close();
  });

  it("behind the S3 read cache, a sequential reader's hint still reaches the pack store, for the chunks the cache does not hold", async () => {
    const engine = await openEngine(dir, { packBytes: 64 * 1024 });
    const store = engine.chunks;
    const objects = Array.from({ length: 8 }, (_, i) => new Uint8Array(20_000).fill(i + 1));
    const addresses: ChunkAddress[] = [];
    for (const o of objects) addresses.push(await store.put(o));
    await store.flush();
    const cache = await CachingChunkStore.open(store, { dir: path.join(dir, 's3-cache'), maxBytes: 1024 * 1024 });
    try {
      const index = store.index;
      const looked: number[] = [];
      let gets = 0;
      const [get, getMany] = [index.get.bind(index), index.getMany.bind(index)];
      index.get = (...args) => {
        gets++;
        return get(...args);
      };
      index.getMany = (addressList, ...rest) => {
        looked.push(addressList.length);
        return getMany(addressList, ...rest);
      };
      const readsBack = async (i: number) =>
        expect(Buffer.from(await cache.get(addresses[i]!)).equals(Buffer.from(objects[i]!))).toBe(true);

      // Chunks 0-1 cached by a first read (two index gets); then a reader hints all eight.
      await readsBack(0);
      await readsBack(1);
      expect(gets).toBe(2);
      cache.prefetch!(addresses);
      for (let i = 0; i < objects.length; i++) await readsBack(i);
      // One getMany of the six the cache did not hold, and no get a chunk.
      expect({ looked, gets }).toEqual({ looked: [6], gets: 2 });
      // All cached now: a hint asks the index nothing.
      cache.prefetch!(addresses);
      expect(looked).toEqual([6]);
    } finally {
      await cache.close();
    }
  });

  it('a put of bytes a loose chunk of an older layout holds reuses it and refreshes its age; no packed copy', async () => {
    const data = new Uint8Array(4000).fill(9);
    const loose = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
    const address = await loose.put(data);
    const old = new Date(Date.now() - 3600_000);
    await fsp.utimes(loose.chunkPath(address), old, old);
    await loose.close();
    const engine = await openEngine(dir);
    expect(await engine.chunks.put(data)).toEqual(address);
    await engine.chunks.flush();
    expect(await engine.chunks.index.get(address)).toBeUndefined();
    const stat = await engine.chunks.stat(address);
    expect(stat!.lastPutMs).toBeGreaterThan(Date.now() - 60_000);
    expect(Buffer.from(await engine.chunks.get(address)).equals(Buffer.from(data))).toBe(true);
    await engine.close();
  });
  it('repack moves loose chunks into packs: every object reads back, the loose files go, a damaged one stays and is counted', async () => {
    const loose = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
    const objects = Array.from({ length: 40 }, (_, i) => new Uint8Array(3000 + i).fill(i));
    const addresses = [];
    for (const o of objects) addresses.push(await loose.put(o));
    const old = new Date(Date.now() - 3 * 3600_000);
    for (const a of addresses) await fsp.utimes(loose.chunkPath(a), old, old);
    // One already packed too (a put by a v3 node before the repack), one with a flipped byte.
    const rotten = await loose.put(new Uint8Array(5000).fill(0xee));
    const rottenFile = loose.chunkPath(rotten);
    const bytes = await fsp.readFile(rottenFile);
    bytes[10]! ^= 1;
    await fsp.writeFile(rottenFile, bytes);
    await loose.close();
    let engine = await openEngine(dir);
    await engine.chunks.put(objects[0]!.slice()); // deduplicated against the loose copy: not packed
    const extra = new Uint8Array(777).fill(7);
    const packedExtra = await engine.chunks.put(extra);
    await engine.chunks.flush();
    const reloose = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
    await reloose.put(extra); // the same bytes loose as well
    await reloose.close();

    const dry = await engine.chunks.repack({ dryRun: true });
    expect(dry).toMatchObject({ moved: 41, dropped: 1, skipped: 0, damaged: 0 });
    const done = await engine.chunks.repack();
    expect(done).toMatchObject({ moved: 40, dropped: 1, skipped: 1, damaged: 1 });
    expect(done.movedBytes).toBe(objects.reduce((n, o) => n + o.length, 0));
    for (const [i, a] of addresses.entries()) {
      expect(Buffer.from(await engine.chunks.get(a)).equals(Buffer.from(objects[i]!))).toBe(true);
      const entry = await engine.chunks.index.get(a);
      expect(entry).toBeDefined();
    }
    // The first object's age is its dedup's, the others keep their loose files' ages (gc's grace is not reset).
    expect((await engine.chunks.stat(addresses[0]!))!.lastPutMs).toBeGreaterThan(Date.now() - 60_000);
    expect((await engine.chunks.stat(addresses[1]!))!.lastPutMs).toBeLessThan(Date.now() - 2 * 3600_000);
    expect(Buffer.from(await engine.chunks.get(packedExtra)).equals(Buffer.from(extra))).toBe(true);
    await engine.close();
    // Only the damaged file is left loose; after a reopen every object still reads from its pack.
    const left = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
    const listed = [];
    for await (const a of left.list()) listed.push(a.toString());
    await left.close();
    expect(listed).toEqual([rotten.toString()]);
    engine = await openEngine(dir);
    for (const [i, a] of addresses.entries()) expect(Buffer.from(await engine.chunks.get(a)).equals(Buffer.from(objects[i]!))).toBe(true);
    expect(await engine.chunks.repack()).toMatchObject({ moved: 0, dropped: 0, skipped: 1, damaged: 1 });
    await engine.close();
  });

  it('repack in steps (limit) ends with nothing loose; uploads and reads running beside it see every object', async () => {
    const loose = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
    const objects = Array.from({ length: 60 }, (_, i) => new Uint8Array(1000).fill(i + 1));
    const addresses = [];
    for (const o of objects) addresses.push(await loose.put(o));
    await loose.close();
    const engine = await openEngine(dir, { packBytes: 16 * 1024 });
    let stop = false;
    // Readers and deduplicating writers beside the repack: nothing may ever be missing.
    const beside = (async () => {
      for (let round = 0; !stop; round++) {
        const i = round % objects.length;
        expect(Buffer.from(await engine.chunks.get(addresses[i]!)).equals(Buffer.from(objects[i]!))).toBe(true);
        if (round % 3 === 0) expect((await engine.chunks.put(objects[i]!.slice())).equals(addresses[i]!)).toBe(true);
        await new Promise((r) => setImmediate(r));
      }
    })();
    let steps = 0;
    for (;;) {
      const step = await engine.chunks.repack({ limit: 7 });
      steps++;
      if (step.moved + step.dropped === 0) break;
    }
    stop = true;
    await beside;
    expect(steps).toBeGreaterThan(5);
    await engine.chunks.flush();
    const left = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
    for await (const a of left.list()) throw new Error(`still loose: ${a.toString()}`);
    await left.close();
    for (const [i, a] of addresses.entries()) expect(Buffer.from(await engine.chunks.get(a)).equals(Buffer.from(objects[i]!))).toBe(true);
    await engine.close();
  });
});
