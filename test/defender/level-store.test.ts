import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import { LevelDefenderStore } from '../../src/defender/level-store.js';
import type { DefenderStore } from '../../src/defender/index.js';
import { defenderStoreConformance } from '../conformance/defender-store.js';

const dirs: string[] = [];
const where = new WeakMap<DefenderStore, string>();
afterAll(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function openFresh(): Promise<DefenderStore> {
  const dir = await mkdtemp(path.join(tmpdir(), 'capstan-defender-'));
  dirs.push(dir);
  const store = await LevelDefenderStore.open(path.join(dir, 'defender'));
  where.set(store, dir);
  return store;
}

defenderStoreConformance('LevelDefenderStore', {
  setup: openFresh,
  teardown: (store) => store.close(),
  async reopen(store) {
    const dir = where.get(store)!;
    await store.close();
    const again = await LevelDefenderStore.open(path.join(dir, 'defender'));
    where.set(again, dir);
    return again;
  },
});

describe('LevelDefenderStore', () => {
  it('drops unreadable records at open and trims to a smaller bound', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-defender-'));
    dirs.push(dir);
    const db = path.join(dir, 'defender');
    const store = await LevelDefenderStore.open(db);
    const record = (lastSeen: number) => ({ events: [], bannedUntil: 0, offences: 0, lastSeen, forgetAt: 2_000_000_000_000 });
    for (let i = 0; i < 5; i++) await store.put(`10.0.0.${i}`, undefined, record(1000 + i));
    await store.close();
    const raw = new Level<string, string>(db, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await raw.put('c!10.0.0.9', '{"version":1,"events":"nope"}');
    await raw.close();
    const again = await LevelDefenderStore.open(db, { maxEntries: 3 });
    try {
      expect(await again.size()).toBe(3);
      expect(await again.get('10.0.0.9')).toBeUndefined();
      // The least recently seen went first.
      expect(await again.get('10.0.0.1')).toBeUndefined();
      expect((await again.get('10.0.0.4'))?.version).toBe(1);
    } finally {
      await again.close();
    }
  });

  it('refuses a database of another format', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-defender-'));
    dirs.push(dir);
    const db = path.join(dir, 'defender');
    const raw = new Level<string, string>(db, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await raw.put('format', '2');
    await raw.close();
    await expect(LevelDefenderStore.open(db)).rejects.toMatchObject({ name: 'InvalidInputError' });
  });
});
