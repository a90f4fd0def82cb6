import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LevelSlotStore, isLevelLocked } from '../../src/store/slots/level.js';
import type { SlotStore } from '../../src/store/slots/slot-store.js';
import { slotStoreConformance } from '../conformance/slot-store.js';

const dirs = new WeakMap<SlotStore, string>();

slotStoreConformance('LevelSlotStore', {
  history: true,
  setup: async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-level-slots-'));
    const store = await LevelSlotStore.open(dir);
    dirs.set(store, dir);
    return store;
  },
  teardown: async (store) => {
    await store.close();
    await fsp.rm(dirs.get(store)!, { recursive: true, force: true });
  },
  reopen: async (store) => {
    await store.close();
    const reopened = await LevelSlotStore.open(dirs.get(store)!);
    dirs.set(reopened, dirs.get(store)!);
    return reopened;
  },
});

describe('LevelSlotStore on disk', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-level-slots-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const si = new Uint8Array(32).fill(0xab);

  it('stores seq as 8 bytes big-endian followed by the record', async () => {
    const store = await LevelSlotStore.open(dir);
    await store.compareAndSwap(si, null, { seq: 0x0102030405060708n, record: Uint8Array.of(9, 10) });
    await store.close();
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    expect(Buffer.from((await db.get(si))!).toString('hex')).toBe('0102030405060708090a');
    await db.close();
  });

  it('a value too short to hold a seq is IntegrityError naming the storage index in hex', async () => {
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.put(si, Uint8Array.of(1, 2, 3));
    await db.close();
    const store = await LevelSlotStore.open(dir);
    try {
      const err = await store.get(si).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'IntegrityError', storageIndex: 'ab'.repeat(32) });
      await expect(store.compareAndSwap(si, null, { seq: 1n, record: new Uint8Array(0) })).rejects.toMatchObject({
        name: 'IntegrityError',
      });
    } finally {
      await store.close();
    }
  });

  it('a second open in the same process fails with level’s lock error (code LEVEL_DATABASE_NOT_OPEN, cause LEVEL_LOCKED)', async () => {
    const store = await LevelSlotStore.open(dir);
    try {
      const err = await LevelSlotStore.open(dir).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN', cause: { code: 'LEVEL_LOCKED' } });
      expect(isLevelLocked(err)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('held by another process: the lock error is recognised', async () => {
    const db = path.join(dir, 'db');
    // A real second process holding the LevelDB lock, the way a running gateway does.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { Level } from 'level';
         const db = new Level(process.argv[1]);
         await db.open();
         process.stdout.write('open\\n');
         process.stdin.on('end', async () => { await db.close(); process.exit(0); });
         process.stdin.resume();`,
        db,
      ],
      { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.once('data', () => resolve());
        holder.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
      });
      const err = await LevelSlotStore.open(db).catch((e: unknown) => e);
      expect(isLevelLocked(err)).toBe(true);
    } finally {
      holder.stdin!.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    }
  });
});
