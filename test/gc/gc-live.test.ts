import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agePackedObjects } from '../helpers/packs.js';
import { makeTempDir, runCli, runCliBinary, startCli, stopAllCli, type CliProcess, cliAt } from '../helpers/cli.js';
import { makeUserKey, Ssh2Sessions } from '../sftp/gateway-fixture.js';
import { call } from '../helpers/callback.js';

/**
 * `capstan gc` beside a serving gateway, uploads running the whole time:
 * nothing acknowledged is lost, old garbage is freed, and chunks an upload
 * deduplicates against old garbage survive (put refreshes their age).
 *
 * Grace here is 1 h: far longer than one of these uploads takes, which is
 * exactly the rule docs/operations.md gives for production (24 h), and
 * longer than the whole test however loaded the machine (the old garbage is
 * aged 2 h). With 18 s, a loaded machine let the workers' own garbage pass
 * the grace during the three gc runs, and gc rightly freed more than the
 * dry run had counted.
 */

const GRACE_HOURS = '1';
const HOUR_MS = 3_600_000;

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let key: Buffer;
let root: string;
let gateway: CliProcess;
let port: number;
const sessions = new Ssh2Sessions();

const { ok } = cliAt(() => node, { timeoutMs: 120_000 });
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
async function session(): Promise<ssh2.SFTPWrapper> {
  return (await sessions.open(port, 'alice', { privateKey: key })).sftp;
}

/**
 * Every stored object, made to look `ms` old: the gateway stops (its
 * LevelDB holds the object index), the index entries are aged, and a new
 * gateway starts on the same node.
 */
async function ageChunks(ms: number): Promise<number> {
  sessions.endAll();
  await gateway.stop();
  const n = await agePackedObjects(node, ms);
  await startGateway();
  return n;
}

async function startGateway(): Promise<void> {
  gateway = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
  port = Number((await gateway.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) /m, 'stderr', 60_000))[1]);
}

beforeAll(async () => {
  tmp = await makeTempDir('capstan-gc-live-');
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  const cfg = path.join(node, 'capstan.cfg');
  await writeFile(cfg, (await readFile(cfg, 'utf8')).replace(/^chunk_size = .*$/m, 'chunk_size = 64KiB'));
  const { keyFile } = await makeUserKey(tmp.dir);
  key = await readFile(keyFile);
  root = (await ok(['mkdir'])).trim();
  await ok(['account', 'add', 'alice', '--key', `${keyFile}.pub`, '--root', root]);
  await startGateway();
}, 90_000);

afterAll(async () => {
  sessions.endAll();
  await stopAllCli();
  await tmp.cleanup();
});

describe('gc while the gateway serves uploads', () => {
  it('frees old garbage, keeps every acknowledged file and every deduplicated chunk', async () => {
    let sftp = await session();
    const files = new Map<string, string>();
    // Old state: kept files, and garbage (files overwritten and removed; old directory versions).
    const revived = randomBytes(200_000);
    await call((cb) => sftp.writeFile('/revived.bin', revived, cb));
    await call((cb) => sftp.unlink('/revived.bin', cb));
    for (let i = 0; i < 6; i++) {
      const data = randomBytes(50_000 + i * 20_000);
      await call((cb) => sftp.writeFile(`/old${i}`, randomBytes(80_000), cb)); // overwritten next
      await call((cb) => sftp.writeFile(`/old${i}`, data, cb));
      files.set(`/old${i}`, sha(data));
    }
    expect(await ageChunks(2 * HOUR_MS)).toBeGreaterThan(20);
    sftp = await session();
    const dry = await ok(['gc', '--dry-run', '--grace', GRACE_HOURS]);
    const wouldFree = Number(/would free (\d+) chunks/.exec(dry)![1]);
    expect(wouldFree).toBeGreaterThan(6);

    // Uploads from three sessions, running until stopped; each acknowledged CLOSE is recorded.
    // Paced, so the tree gc walks stays a few hundred files however fast the client is: unpaced
    // (and with TCP_NODELAY) the workers put thousands of files, and each gc run walked longer.
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      const s = await session();
      for (let i = 0; !stop; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const data = randomBytes(Math.floor(Math.random() * 400_000));
        await call((cb) => s.writeFile(`/w${w}-${i}`, data, cb));
        files.set(`/w${w}-${i}`, sha(data));
        if (i % 4 === 3) {
          await call((cb) => s.unlink(`/w${w}-${i - 1}`, cb));
          files.delete(`/w${w}-${i - 1}`);
        }
      }
    };
    const workers = [0, 1, 2].map(worker);
    // The same bytes as the old garbage file, uploaded while gc runs: every chunk dedups against an old one.
    const revive = (async () => {
      await new Promise((r) => setTimeout(r, 300));
      await call((cb) => sftp.writeFile('/revived.bin', revived, cb));
      files.set('/revived.bin', sha(revived));
    })();
    let freed = 0;
    for (let run = 0; run < 3; run++) {
      const out = await ok(['gc', '--grace', GRACE_HOURS]);
      freed += Number(/freed (\d+) chunks/.exec(out)![1]);
    }
    await revive;
    stop = true;
    await Promise.all(workers);
    // All of the old garbage, but for the revived file's 4 chunks and manifest when its upload won the race.
    expect(freed).toBeGreaterThanOrEqual(wouldFree - 5);
    expect(freed).toBeLessThanOrEqual(wouldFree);
    expect(files.size).toBeGreaterThan(10);

    for (const [p, hash] of files) expect(sha(await call<Buffer>((cb) => sftp.readFile(p, cb))), p).toBe(hash);
    const check = await runCli(['-d', node, 'check', '--verify', root], { timeoutMs: 120_000 });
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect((await stat(path.join(node, 'private'))).isDirectory()).toBe(true);
  }, 120_000);

  it('pin keeps an unlinked directory alive; unpinned, it is collected', async () => {
    const dir = (await ok(['mkdir'])).trim();
    const local = path.join(tmp.dir, 'pinned.bin');
    const bytes = randomBytes(150_000);
    await writeFile(local, bytes);
    await ok(['put', local, `${dir}/pinned.bin`]);
    expect(await ok(['pin', dir])).toBe('pinned\n');
    expect(await ok(['pin', dir])).toBe('already pinned\n');
    expect((await stat(path.join(node, 'private/pins'))).mode & 0o777).toBe(0o600);
    await ageChunks(2 * HOUR_MS);
    await ok(['gc', '--grace', '1']);
    const r = await runCli(['-d', node, 'get', `${dir}/pinned.bin`]);
    expect(r.code).toBe(0);
    expect(await ok(['pin', '--remove', dir])).toBe('unpinned\n');
    const out = await ok(['gc', '--grace', '1']);
    expect(Number(/freed (\d+) chunks/.exec(out)![1])).toBeGreaterThanOrEqual(4); // 3 data chunks, manifest, directory node
    expect((await runCli(['-d', node, 'get', `${dir}/pinned.bin`])).code).not.toBe(0);
    // Ten CLI commands: each starts a node process, seconds apiece on a loaded machine.
  }, 180_000);

  it('a snapshot keeps every chunk it reaches; once removed, they are collected', async () => {
    const bytes = randomBytes(150_000);
    const local = path.join(tmp.dir, 'snapped.bin');
    await writeFile(local, bytes);
    await ok(['put', local, `${root}/snapped.bin`]);
    const snap = (await ok(['snapshot', 'create', root])).trim();
    await ok(['rm', `${root}/snapped.bin`]);
    // A snapshot of a directory no root reaches: its cap is nowhere gc can find, so nothing is swept.
    const stray = (await ok(['mkdir'])).trim();
    const straySnap = (await ok(['snapshot', 'create', stray])).trim();
    const refused = await runCli(['-d', node, 'gc', '--grace', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/snapshot\(s\) of a directory no root reaches/);
    await ok(['snapshot', 'remove', straySnap]);

    await ageChunks(2 * HOUR_MS);
    await ok(['gc', '--grace', '1']);
    const kept = await runCliBinary(['-d', node, 'get', `${snap}/snapped.bin`, '-']);
    expect(kept.code).toBe(0);
    expect(sha(kept.stdoutBytes)).toBe(sha(bytes));
    await ok(['snapshot', 'remove', snap]);
    const out = await ok(['gc', '--grace', '1']);
    expect(Number(/freed (\d+) chunks/.exec(out)![1])).toBeGreaterThanOrEqual(4); // 3 data chunks, manifest, old directory node
  }, 180_000);
});

describe('gc refuses what it cannot see', () => {
  it('an account server (accounts.url) stops the sweep unless its roots are vouched pinned; so does a bad pins line', async () => {
    const cfg = path.join(node, 'capstan.cfg');
    const original = await readFile(cfg, 'utf8');
    expect(original).toMatch(/^#? ?accounts\.url =.*$/m);
    await writeFile(cfg, original.replace(/^#? ?accounts\.url =.*$/m, 'accounts.url = http://127.0.0.1:9/accounts'));
    try {
      const refused = await runCli(['-d', node, 'gc', '--dry-run']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^capstan: gc: \[sftpd\] accounts\.url: /m);
      expect(refused.stderr).toMatch(/nothing deleted/);
      expect((await runCli(['-d', node, 'gc', '--dry-run', '--account-server-roots-pinned'])).code).toBe(0);
    } finally {
      await writeFile(cfg, original);
    }
    await writeFile(path.join(node, 'private/pins'), '# comment\nnot-a-cap\n', { mode: 0o600 });
    const bad = await runCli(['-d', node, 'gc']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^capstan: gc: pins file line 2: /m);
  }, 60_000);
});
