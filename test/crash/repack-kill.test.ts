import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChunkAddress } from '../../src/store/chunks/chunk-store.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { LocalEngine } from '../../src/store/packs/local-engine.js';
import { runUntilKilled } from '../helpers/killed-writer.js';

/**
 * `capstan repack` SIGKILLed at random points (test/crash/repack-writer.mjs)
 * and reopened each time: every object of the old layout reads back
 * byte-identical, from a pack or from its loose file, after every kill; the
 * rounds go on until a repack completes, and then nothing is left loose.
 * CAPSTAN_CRASH_ROUNDS bounds the kills (CI 10, soak 100).
 */

const ROUNDS = Number(process.env.CAPSTAN_CRASH_ROUNDS ?? 10);
const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'repack-writer.mjs');

let dir: string;
const objects = new Map<string, { address: ChunkAddress; bytes: Buffer }>();
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-repack-kill-'));
  const loose = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
  for (let i = 0; i < 400; i++) {
    const bytes = randomBytes(1 + Math.floor(Math.random() * 60_000));
    const address = await loose.put(bytes);
    objects.set(address.toString(), { address, bytes });
  }
  await loose.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the repacker; kills it `delayMs` after it is ready, unless it finished first. Answers whether it finished. */
async function repackUntilKilled(delayMs: number): Promise<boolean> {
  const { out, err, code } = await runUntilKilled(WRITER, [dir], { after: ['ready\n'], delayMs });
  if (code !== null && code !== 0) throw new Error(`repacker failed: ${err}`);
  return out.includes('done\n');
}

async function everyObjectReadsBack(): Promise<number> {
  const engine = await LocalEngine.open({
    slotsDir: path.join(dir, 'slots'),
    packsDir: path.join(dir, 'packs'),
    legacy: await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false }),
  });
  let packed = 0;
  try {
    for (const { address, bytes } of objects.values()) {
      expect(Buffer.from(await engine.chunks.get(address)).equals(bytes)).toBe(true);
      if ((await engine.chunks.index.get(address)) !== undefined) packed++;
    }
  } finally {
    await engine.close();
  }
  return packed;
}

describe('repack under SIGKILL', () => {
  it('never loses an object, and a repack that completes leaves nothing loose', async () => {
    let finished = false;
    for (let round = 0; round < ROUNDS && !finished; round++) {
      finished = await repackUntilKilled(20 + Math.floor(Math.random() * 150));
      await everyObjectReadsBack();
    }
    if (!finished) finished = await repackUntilKilled(240_000);
    expect(finished).toBe(true);
    expect(await everyObjectReadsBack()).toBe(objects.size);
    const loose = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: false });
    for await (const a of loose.list()) throw new Error(`still loose: ${a.toString()}`);
    await loose.close();
  }, 300_000);
});
