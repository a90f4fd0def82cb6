import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsChunkStore, LevelSlotStore, parseAddress } from '../../src/store/index.js';
import { runUntilKilled } from '../helpers/killed-writer.js';

/**
 * The fs chunk store and the LevelDB slot store, SIGKILLed at random points
 * of a put / compare-and-swap loop (test/crash/store-writer.mjs) and
 * reopened: every chunk whose put resolved reads back byte-identical, the
 * slot holds the last acknowledged sequence or one past it (the CAS cut off
 * mid-way may or may not have landed) with exactly the record written for
 * it, temp files of interrupted puts are never read as chunks.
 *
 * A SIGKILL does not drop the page cache, so this proves atomicity
 * (rename-into-place, LevelDB's log), not fsync ordering against power loss.
 * CAPSTAN_CRASH_ROUNDS sets the number of kills (CI 10, soak 100).
 */

const ROUNDS = Number(process.env.CAPSTAN_CRASH_ROUNDS ?? 10);
const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'store-writer.mjs');
const recordFor = (seq: bigint): Buffer => createHash('sha512').update(`record ${seq}`).digest();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-store-kill-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runAndKill(delayMs: number): Promise<{ chunks: Map<string, string>; lastSeq: bigint }> {
  // Killed only after a first acknowledged write, so a slow start on a loaded machine still tests something.
  const { out } = await runUntilKilled(WRITER, [dir], { after: ['ready\n', '\nslot '], delayMs });
  const chunks = new Map<string, string>();
  let lastSeq = 0n;
  for (const line of out.split('\n')) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'chunk') chunks.set(a!, b!);
    if (kind === 'slot') lastSeq = BigInt(a!);
  }
  return { chunks, lastSeq };
}

describe('stores killed mid-write', () => {
  it(
    `${ROUNDS} kills: acknowledged chunks intact, slot at the acknowledged sequence or one past`,
    async () => {
      const acknowledged = new Map<string, string>();
      let seqFloor = 0n;
      for (let round = 0; round < ROUNDS; round++) {
        const { chunks, lastSeq } = await runAndKill(20 + Math.random() * 400);
        for (const [k, v] of chunks) acknowledged.set(k, v);
        const store = await FsChunkStore.open(path.join(dir, 'chunks'));
        for (const [address, hash] of acknowledged) {
          const bytes = await store.get(parseAddress(address));
          expect(createHash('sha256').update(bytes).digest('hex')).toBe(hash);
        }
        // Everything listed is whole (get re-hashes it): nothing half-written is a chunk.
        for await (const address of store.list()) await store.get(address);
        const slots = await LevelSlotStore.open(path.join(dir, 'slots'));
        try {
          const entry = await slots.get(new Uint8Array(32).fill(9));
          const acked = lastSeq > seqFloor ? lastSeq : seqFloor;
          if (acked > 0n) {
            expect(entry).toBeDefined();
            expect(entry!.seq === acked || entry!.seq === acked + 1n).toBe(true);
          }
          if (entry) {
            expect(Buffer.from(entry.record).equals(recordFor(entry.seq))).toBe(true);
            seqFloor = entry.seq;
          }
        } finally {
          await slots.close();
        }
      }
      expect(acknowledged.size).toBeGreaterThanOrEqual(ROUNDS);
      // Interrupted puts leave only young temp files, which open() keeps (another process may own them).
      expect((await readdir(path.join(dir, 'chunks/tmp'))).every((n) => !n.startsWith('gc.'))).toBe(true);
    },
    30_000 + ROUNDS * 5_000,
  );
});
