import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { MemoryObjectIndex } from '../../src/store/packs/index-store.js';
import { LevelObjectIndex } from '../../src/store/packs/level-index.js';
import { objectIndexConformance } from '../conformance/object-index.js';

/** The object index backends a single process owns, through the ObjectIndex conformance suite. */

objectIndexConformance('MemoryObjectIndex', {
  setup: async () => new MemoryObjectIndex(),
  teardown: async (index) => index.close(),
});

const dbs = new WeakMap<object, { db: Level<Uint8Array, Uint8Array>; dir: string }>();
objectIndexConformance('LevelObjectIndex (with its miss filter)', {
  setup: async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-index-'));
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    const index = new LevelObjectIndex(db);
    index.startFilter();
    dbs.set(index, { db, dir });
    return index;
  },
  teardown: async (index) => {
    const { db, dir } = dbs.get(index)!;
    await index.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  },
});
