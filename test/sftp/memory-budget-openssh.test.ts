import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileReadCap } from '../../src/cap/index.js';
import { MemoryBudget } from '../../src/util/memory-budget.js';
import { peersOrSkip, requirePeers, sftpBatch } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * One gateway-wide memory budget ([limits] memory_budget), far smaller than
 * what the clients send at once: 8 real OpenSSH sftp clients (each keeps up
 * to 64 WRITEs of up to 255 KiB in flight, so 16 MiB each) upload and
 * download through one gateway whose budget is 4 MiB. The budget must push
 * back (clients are not read for a while) instead of failing anything:
 * every upload is acknowledged and reads back byte-identical, every
 * download is byte-identical, the budget never held more than its limit,
 * and it is all given back once the sessions are gone. Downloads keep
 * replies waiting for their clients: beyond a floor per session those are
 * held in the budget too (src/sftp/reply-room.ts).
 */
const CLIENTS = 8;
const LIMIT = 4 * 1024 * 1024;
/** Not a multiple of the 1 MiB chunk: a short last chunk, several chunks in flight. */
const FILE_BYTES = 5 * 1024 * 1024 + 12_345;

const skip = peersOrSkip('memory budget with OpenSSH sftp', 'sftp');

let gw: Gateway;
let work: string;
const budget = new MemoryBudget(LIMIT);
const digests = new Map<string, string>();

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function makeFile(name: string): Promise<void> {
  const bytes = randomBytes(FILE_BYTES);
  await writeFile(join(work, name), bytes);
  digests.set(name, sha256(bytes));
}

beforeAll(async () => {
  if (skip) return;
  requirePeers('sftp');
  gw = await startGateway({ fsChunks: true, memory: budget });
  work = await mkdtemp(join(tmpdir(), 'capstan-budget-'));
  for (let i = 0; i < CLIENTS; i++) {
    await makeFile(`seed-${i}.bin`);
    await makeFile(`up-${i}.bin`);
  }
});

afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)('a 4 MiB memory budget for 8 OpenSSH sftp clients', () => {
  it('serves every upload and download byte-identical, holds at most its limit, and gives everything back', async () => {
    // Seeds first, all at once: only uploads.
    const seeded = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => sftpBatch(gw.alice, work, [`put seed-${i}.bin`], [], 300_000)),
    );
    for (const r of seeded) expect(r.code, r.stderr).toBe(0);
    const pressuredBySeeds = budget.pressureEpisodes;

    // Then every client uploads a new file while downloading another's seed, and reads its upload back.
    let mostReplies = 0;
    const sampler = setInterval(() => (mostReplies = Math.max(mostReplies, budget.replies)), 2);
    const mixed = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        sftpBatch(
          gw.alice,
          work,
          [`put up-${i}.bin`, `get seed-${(i + 1) % CLIENTS}.bin got-seed-${i}.bin`, `get up-${i}.bin back-${i}.bin`],
          [],
          300_000,
        ),
      ),
    );
    clearInterval(sampler);
    for (const r of mixed) expect(r.code, r.stderr).toBe(0);

    for (let i = 0; i < CLIENTS; i++) {
      expect(sha256(await readFile(join(work, `got-seed-${i}.bin`)))).toBe(digests.get(`seed-${(i + 1) % CLIENTS}.bin`));
      expect(sha256(await readFile(join(work, `back-${i}.bin`)))).toBe(digests.get(`up-${i}.bin`));
    }
    // Acknowledged => present: what the clients put is in the tree under its name, whole.
    const root = gw.tree.directory(gw.root);
    for (const name of digests.keys()) {
      const entry = await root.lookup(name);
      if (entry === undefined || !(entry.cap instanceof FileReadCap)) throw new Error(`${name} is not a stored file`);
      const reader = await gw.tree.openFile(entry.cap);
      const chunks: Uint8Array[] = [];
      for await (const chunk of reader.stream()) chunks.push(chunk);
      expect(sha256(Buffer.concat(chunks))).toBe(digests.get(name));
    }

    // The budget pushed back rather than growing, and never held more than its limit.
    expect(pressuredBySeeds).toBeGreaterThan(0);
    expect(budget.highWater).toBeGreaterThan(LIMIT / 2);
    expect(budget.highWater).toBeLessThanOrEqual(LIMIT);
    // Replies waiting for the downloading clients were held in it, within their share.
    expect(mostReplies).toBeGreaterThan(0);
    expect(mostReplies).toBeLessThanOrEqual(budget.repliesUpTo);
    // The sessions close on the gateway's side after the clients exit; then nothing is held.
    await vi.waitFor(() => expect(budget.used + budget.replies).toBe(0), { timeout: 10_000 });
  }, 600_000);
});
