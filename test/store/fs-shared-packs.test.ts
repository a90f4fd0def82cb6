import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { FsPackObjects } from '../../src/store/packs/fs-pack-objects.js';
import { ObjectPackSink } from '../../src/store/packs/object-sink.js';
import { PackChunkStore } from '../../src/store/packs/pack-store.js';
import { PostgresObjectIndex } from '../../src/store/packs/postgres-index.js';
import { chunkStoreConformance } from '../conformance/chunk-store.js';
import { skipNotice } from '../helpers/openssh.js';
import { dropSchema, freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * Storage engine v3 on a directory several gateways share, with the object
 * index in a real PostgreSQL (docs/spec/packs.md, Several gateways): packs
 * written whole as files into `shared-packs/`, through the ChunkStore
 * conformance suite (a flipped byte and a truncated pack are integrity errors
 * of the objects they touch), then what only shared packs do: one pack file
 * per flush, a second gateway reading the first's objects, loose files of
 * layout v2 read through and repacked, compaction.
 */

const skip = skipNotice(postgresUnavailable(), 'packs on a shared fs with a PostgreSQL index');

describe.skipIf(skip !== undefined)('packs on a shared fs', () => {
  let postgres: TestPostgres;
  let root: string;
  beforeAll(async () => {
    postgres = await startPostgres();
    root = await mkdtemp(path.join(tmpdir(), 'capstan-fs-packs-'));
  }, 120_000);
  afterAll(async () => {
    await postgres?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const opened = new WeakMap<ChunkStore, { dir: string; schema: string }>();

  /** A gateway's pack store on the shared directory `dir` and the index in `schema`. */
  async function open(dir: string, schema: string, extra: { minSealedAgeMs?: number } = {}): Promise<PackChunkStore> {
    const index = await PostgresObjectIndex.open({ url: postgres.url, schema });
    const objects = await FsPackObjects.open(path.join(dir, 'shared-packs'), { fsync: false });
    const legacy = await FsChunkStore.open(dir, { fsync: false });
    const sink = new ObjectPackSink({ objects, minSealedAgeMs: extra.minSealedAgeMs });
    const store = new PackChunkStore({ sink, index, legacy, dedupAgainstLegacy: false });
    opened.set(store, { dir, schema });
    return store;
  }
  const fresh = async (): Promise<PackChunkStore> => open(await mkdtemp(path.join(root, 'store-')), freshSchema('fsp'));

  async function packFileOf(store: PackChunkStore, address: ChunkAddress): Promise<{ file: string; offset: number; length: number }> {
    const entry = await store.index.get(address);
    if (entry === undefined) throw new Error('not indexed');
    const { dir } = opened.get(store) ?? { dir: '' };
    return { file: path.join(dir, 'shared-packs', `${entry.location.pack}.pack`), ...entry.location };
  }

  chunkStoreConformance('PackChunkStore (shared fs packs, PostgreSQL index)', {
    setup: fresh,
    teardown: async (store) => {
      await store.close();
      await dropSchema(postgres.url, opened.get(store)?.schema ?? '');
    },
    corrupt: async (store, address) => {
      await (store as PackChunkStore).flush();
      const { file, offset } = await packFileOf(store as PackChunkStore, address);
      const bytes = await readFile(file);
      bytes[offset] = (bytes[offset] ?? 0) ^ 1;
      await writeFile(file, bytes);
    },
    truncate: async (store, address) => {
      await (store as PackChunkStore).flush();
      const { file, offset, length } = await packFileOf(store as PackChunkStore, address);
      await truncate(file, offset + length - 1);
    },
    reopen: async (store) => {
      const { dir, schema } = opened.get(store) ?? { dir: '', schema: '' };
      await store.close();
      return open(dir, schema);
    },
  });

  it('a flush of many objects is one pack file; a second gateway reads them; loose files are read through and repacked; compaction frees packs', async () => {
    const dir = await mkdtemp(path.join(root, 'store-'));
    const schema = freshSchema('fsp');
    const old = await FsChunkStore.open(dir, { fsync: false });
    const looseBytes = randomBytes(2000);
    const looseAddress = await old.put(looseBytes);
    await old.close();
    const a = await open(dir, schema, { minSealedAgeMs: 0 });
    const b = await open(dir, schema);
    try {
      const objects = Array.from({ length: 5 }, (_, i) => randomBytes(100 + i * 5000));
      const addresses = [];
      for (const o of objects) addresses.push(await a.put(o));
      await a.flush();
      expect((await readdir(path.join(dir, 'shared-packs'))).filter((n) => n.endsWith('.pack'))).toHaveLength(1);
      for (const [i, address] of addresses.entries())
        expect(Buffer.from(await b.get(address)).equals(objects[i] ?? Buffer.alloc(0))).toBe(true);
      // Deduplicated across gateways: b writes no pack for bytes a stored.
      await b.put(objects[0] ?? Buffer.alloc(0));
      await b.flush();
      expect((await readdir(path.join(dir, 'shared-packs'))).filter((n) => n.endsWith('.pack'))).toHaveLength(1);

      // A loose file of layout v2 reads through, and repack moves it into a pack.
      expect(Buffer.from(await b.get(looseAddress)).equals(looseBytes)).toBe(true);
      expect(await a.repack()).toMatchObject({ moved: 1, dropped: 0, damaged: 0 });
      expect((await a.index.get(looseAddress))?.location.pack).toMatch(/^[0-9a-f]{16}$/);
      expect(Buffer.from(await b.get(looseAddress)).equals(looseBytes)).toBe(true);

      // Compaction rewrites a pack whose objects are mostly garbage; what is live stays readable through both.
      const keep = randomBytes(4000);
      const keepAddress = await a.put(keep);
      const garbage = [];
      for (let i = 0; i < 6; i++) garbage.push(await a.put(randomBytes(8000)));
      await a.flush();
      for (const g of garbage) expect(await a.deleteIfIdleSince(g, Date.now() + 60_000)).toBe(8000);
      // Packs older than a moment: the sink only compacts what its writers have surely indexed.
      const past = new Date(Date.now() - 10_000);
      for (const n of await readdir(path.join(dir, 'shared-packs'))) await utimes(path.join(dir, 'shared-packs', n), past, past);
      const compacted = await a.compact();
      expect(compacted.rewritten).toBeGreaterThanOrEqual(1);
      expect(Buffer.from(await b.get(keepAddress)).equals(keep)).toBe(true);
      for (const g of garbage) expect(await b.has(g)).toBe(false);
    } finally {
      await a.close();
      await b.close();
      await dropSchema(postgres.url, schema);
    }
  });
});
