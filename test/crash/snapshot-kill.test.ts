import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalEngine } from '../../src/store/packs/local-engine.js';
import { runUntilKilled } from '../helpers/killed-writer.js';

/**
 * Slot history on the embedded default (docs/spec/snapshots.md), SIGKILLed
 * while four slots are swapped as fast as they go and a pin is taken every
 * few milliseconds (test/crash/snapshot-writer.mjs), then reopened (the
 * engine replays the journal): every acknowledged pin is there, reads each
 * slot at a version at least as new as every swap acknowledged before the
 * pin was asked and older than every swap started after it was
 * acknowledged, with exactly the record written for it, and answers what
 * the writer read at it right after it was acknowledged, in every later
 * round too. CAPSTAN_CRASH_ROUNDS sets the number of kills.
 */

const ROUNDS = Number(process.env.CAPSTAN_CRASH_ROUNDS ?? 10);
const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'snapshot-writer.mjs');
const SLOTS = 4;
const index = (i: number) => new Uint8Array(32).fill(i + 1);
const recordFor = (i: number, seq: bigint): Buffer => createHash('sha512').update(`slot ${i} record ${seq}`).digest();

interface AckedPin {
  epoch: bigint;
  low: bigint[];
  high: bigint[];
  /** What the writer read at the pin right after it was acknowledged. */
  read: bigint[];
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-snapshot-kill-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runAndKill(delayMs: number): Promise<AckedPin[]> {
  // Killed only after a first acknowledged pin, so a slow start on a loaded machine still tests something.
  const { out } = await runUntilKilled(WRITER, [dir], { after: ['ready\n', '\npin '], delayMs });
  const pins: AckedPin[] = [];
  for (const line of out.split('\n')) {
    const [kind, epoch, low, high, read] = line.split(' ');
    if (kind === 'pin' && read !== undefined) {
      const seqs = (text: string) => text.split(',').map(BigInt);
      pins.push({ epoch: BigInt(epoch!), low: seqs(low!), high: seqs(high!), read: seqs(read) });
    }
  }
  return pins;
}

describe('slot history killed mid-write', () => {
  it(
    `${ROUNDS} kills: every acknowledged pin reads each slot between the swaps acknowledged before it and those started after it, always the same`,
    async () => {
      const seen = new Map<bigint, bigint[]>();
      const acknowledged: AckedPin[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        acknowledged.push(...(await runAndKill(20 + Math.random() * 300)));
        const engine = await LocalEngine.open({ slotsDir: path.join(dir, 'slots'), packsDir: path.join(dir, 'packs') });
        try {
          const history = engine.slots.history;
          for (const pin of acknowledged) {
            const seqs: bigint[] = [];
            for (let i = 0; i < SLOTS; i++) {
              const entry = await history.getAt(index(i), pin.epoch);
              const seq = entry?.seq ?? 0n;
              expect(seq).toBeGreaterThanOrEqual(pin.low[i]!);
              expect(seq).toBeLessThanOrEqual(pin.high[i]!);
              if (entry !== undefined) expect(Buffer.from(entry.record).equals(recordFor(i, entry.seq))).toBe(true);
              seqs.push(seq);
            }
            expect(seqs).toEqual(pin.read);
            const before = seen.get(pin.epoch);
            if (before !== undefined) expect(seqs).toEqual(before);
            seen.set(pin.epoch, seqs);
          }
        } finally {
          await engine.close();
        }
      }
      expect(acknowledged.length).toBeGreaterThanOrEqual(ROUNDS);
    },
    60_000 + ROUNDS * 8_000,
  );
});
