import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { call } from '../helpers/callback.js';
import { CLI, type CliProcess, cliOk, makeTempDir, startCli } from '../helpers/cli.js';
import { setConfig } from '../helpers/cluster.js';
import { freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { connectSsh2, makeUserKey, sftpOf } from '../sftp/gateway-fixture.js';

/**
 * An event for every commit (docs/spec/events.md, Intents): the real
 * gateway (`capstan run`, a webhook sink configured) is SIGKILLed at every
 * step of a commit (test/crash/event-faults.mjs: before the intent, after
 * the intent, after the slot compare-and-swap, after the event) while one
 * client makes changes of every kind, then restarted. Every change that is
 * committed (acknowledged, or cut off and found in the tree) has exactly one
 * event id delivered to the webhook (the same id possibly more than once);
 * a change cut off before it committed has none. On the embedded default
 * (LevelDB slots) and with PostgreSQL slots.
 */

const FAULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'event-faults.mjs');
const STEPS = ['before-intent', 'intent', 'cas', 'event'] as const;
/** Kills per step; each lands on a different occurrence of the step, so on different kinds of change. */
const PER_STEP = Number(process.env.CAPSTAN_EVENT_KILLS_PER_STEP ?? 3);

interface Received {
  id: string;
  operation: string;
  path: string;
  fromPath?: string;
}

type Change =
  | { op: 'mkdir' | 'rmdir' | 'remove' | 'symlink'; path: string }
  | { op: 'upload'; path: string; data: Buffer }
  | { op: 'rename'; from: string; path: string };

const keyOf = (op: string, p: string): string => `${op} ${p.replace(/^\//, '')}`;

let tmp: { dir: string; cleanup: () => Promise<void> };
let hook: Server;
let hookUrl: string;
const received: Received[] = [];
let pg: TestPostgres | undefined;

beforeAll(async () => {
  tmp = await makeTempDir('capstan-event-kill-');
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      const e = JSON.parse(body) as Received;
      received.push({ id: e.id, operation: e.operation, path: e.path, ...(e.fromPath !== undefined ? { fromPath: e.fromPath } : {}) });
      res.statusCode = 200;
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/events`;
});
afterAll(async () => {
  await new Promise((r) => hook.close(r));
  await pg?.stop();
  await tmp.cleanup();
});

const cli = (node: string, args: string[]): Promise<string> => cliOk(node, args, undefined, { timeoutMs: 60_000 });

/** `capstan run`, with the fault preloaded when `kill` is given. */
async function startGateway(node: string, kill?: { step: string; at: number }): Promise<{ proc: CliProcess; port: number }> {
  const env = kill === undefined ? {} : { CAPSTAN_TEST_KILL_STEP: kill.step, CAPSTAN_TEST_KILL_AT: String(kill.at) };
  const proc = startCli(['run', '-d', node, '--listen', '127.0.0.1:0'], { env, nodeFlags: ['--import', FAULTS] });
  const m = await proc.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) /m, 'stderr', 60_000);
  return { proc, port: Number(m[1]) };
}

async function lstat(sftp: ssh2.SFTPWrapper, p: string): Promise<ssh2.Stats | undefined> {
  try {
    return await call<ssh2.Stats>((cb) => sftp.lstat(p, cb));
  } catch (err) {
    if ((err as { code?: number }).code === 2) return undefined;
    throw err;
  }
}

async function apply(sftp: ssh2.SFTPWrapper, c: Change): Promise<void> {
  if (c.op === 'mkdir') await call((cb) => sftp.mkdir(c.path, cb));
  else if (c.op === 'rmdir') await call((cb) => sftp.rmdir(c.path, cb));
  else if (c.op === 'remove') await call((cb) => sftp.unlink(c.path, cb));
  else if (c.op === 'symlink') await call((cb) => sftp.symlink(c.path, 'target', cb));
  else if (c.op === 'upload') await call((cb) => sftp.writeFile(c.path, c.data, cb));
  else if (c.op === 'rename') await call((cb) => sftp.rename(c.from, c.path, cb));
}

/** Whether a change cut off by the kill is in the tree (each change names fresh paths, so this is unambiguous). */
async function isInTree(sftp: ssh2.SFTPWrapper, c: Change): Promise<boolean> {
  if (c.op === 'mkdir' || c.op === 'symlink') return (await lstat(sftp, c.path)) !== undefined;
  if (c.op === 'upload') {
    if ((await lstat(sftp, c.path)) === undefined) return false;
    expect(Buffer.compare(await call<Buffer>((cb) => sftp.readFile(c.path, cb)), c.data)).toBe(0);
    return true;
  }
  if (c.op !== 'rename') return (await lstat(sftp, c.path)) === undefined;
  // A move across directories cut off between its two updates leaves both names: not committed.
  return (await lstat(sftp, c.path)) !== undefined && (await lstat(sftp, c.from)) === undefined;
}

/** The changes of one round, in order: every kind, moves within and across directories. */
function* changesOf(round: number): Generator<Change> {
  for (let i = 0; ; i++) {
    const d = `/r${round}-${i}`;
    yield { op: 'mkdir', path: d };
    yield { op: 'upload', path: `${d}/a`, data: randomBytes(1 + Math.floor(Math.random() * 100_000)) };
    yield { op: 'rename', from: `${d}/a`, path: `${d}-a` };
    yield { op: 'upload', path: `${d}/b`, data: randomBytes(40) };
    yield { op: 'rename', from: `${d}/b`, path: `${d}/c` };
    yield { op: 'symlink', path: `${d}/l` };
    yield { op: 'remove', path: `${d}/l` };
    yield { op: 'remove', path: `${d}/c` };
    yield { op: 'rmdir', path: d };
  }
}

async function runKills(node: string, keyFile: string): Promise<void> {
  const key = await readFile(keyFile);
  const committed = new Set<string>();
  const notCommitted = new Set<string>();
  /** Per kill step: cut-off changes found committed after the restart, and found not committed. */
  const outcomes = new Map<string, { committed: number; not: number }>(STEPS.map((s) => [s, { committed: 0, not: 0 }]));
  const kills = STEPS.flatMap((step) =>
    Array.from({ length: PER_STEP }, (_, k) => ({ step, at: 2 + k * 3 + Math.floor(Math.random() * 3) })),
  );
  let round = 0;
  for (const kill of [...kills, undefined]) {
    const { proc, port } = await startGateway(node, kill);
    const client = await connectSsh2(port, 'alice', { privateKey: key });
    client.on('error', () => undefined);
    let cutOff: Change | undefined;
    try {
      const sftp = await sftpOf(client);
      if (kill === undefined) break;
      let made = 0;
      for (const change of changesOf(round++)) {
        if (made++ > 100) throw new Error(`the ${kill.step} kill #${kill.at} never came`);
        cutOff = change;
        try {
          await apply(sftp, change);
        } catch {
          break; // the kill: the connection is gone
        }
        committed.add(keyOf(change.op, change.path));
        cutOff = undefined;
      }
    } finally {
      client.end();
      await proc.stop('SIGKILL');
    }
    expect(proc.child.signalCode).toBe('SIGKILL');
    if (cutOff !== undefined) {
      // Restarted: the change cut off is there or not, and its event follows.
      const again = await startGateway(node);
      const c2 = await connectSsh2(again.port, 'alice', { privateKey: key });
      try {
        const sftp = await sftpOf(c2);
        const there = await isInTree(sftp, cutOff);
        (there ? committed : notCommitted).add(keyOf(cutOff.op, cutOff.path));
        outcomes.get(kill.step)![there ? 'committed' : 'not']++;
        await vi.waitFor(() => expect(new Set(received.map((e) => keyOf(e.operation, e.path)))).toEqual(committed), {
          timeout: 30_000,
          interval: 50,
        });
      } finally {
        c2.end();
        await again.proc.stop('SIGKILL');
      }
    }
  }
  await vi.waitFor(() => expect(new Set(received.map((e) => keyOf(e.operation, e.path)))).toEqual(committed), {
    timeout: 30_000,
    interval: 50,
  });
  // Exactly one id per committed change (redeliveries of that id allowed), none for the others.
  const ids = new Map<string, Set<string>>();
  for (const e of received) {
    const k = keyOf(e.operation, e.path);
    if (!ids.has(k)) ids.set(k, new Set());
    ids.get(k)!.add(e.id);
  }
  for (const k of committed) expect([k, ids.get(k)?.size]).toEqual([k, 1]);
  for (const k of notCommitted) expect(ids.has(k), k).toBe(false);
  // The cases that matter were met: a kill after the slot update cut off a committed change (its event
  // came from the intent, resolved at restart), and a kill before it one that never committed.
  expect(outcomes.get('cas')!.committed).toBeGreaterThan(0);
  expect(outcomes.get('intent')!.not).toBeGreaterThan(0);
  expect(outcomes.get('before-intent')!.not).toBeGreaterThan(0);
}

async function makeNode(name: string, extra: Record<string, string> = {}): Promise<{ node: string; keyFile: string }> {
  const node = path.join(tmp.dir, name);
  await cli(node, ['init']);
  await setConfig(node, { 'webhook.url': hookUrl, 'retry.initial_delay': '50', 'retry.max_delay': '500', ...extra });
  const { keyFile } = await makeUserKey(tmp.dir, `id_${name}`);
  await cli(node, ['account', 'add', 'alice', '--key', `${keyFile}.pub`]);
  return { node, keyFile };
}

describe('SIGKILL at every step of a commit, then restart: one event id per committed change', () => {
  it('on the embedded default (LevelDB slots)', async () => {
    expect(existsSync(CLI), 'dist/cli/main.js: run npm run build').toBe(true);
    received.length = 0;
    const { node, keyFile } = await makeNode('embedded');
    await runKills(node, keyFile);
  }, 600_000);

  it('with PostgreSQL slots', async () => {
    const unavailable = postgresUnavailable();
    if (unavailable !== undefined) {
      if (process.env.CI === 'true') throw new Error(`PostgreSQL needed: ${unavailable}`);
      console.warn(`SKIPPED PostgreSQL event kills: ${unavailable}`);
      return;
    }
    received.length = 0;
    pg = await startPostgres();
    const url = new URL(pg.url);
    const password = decodeURIComponent(url.password);
    url.password = '';
    if (password !== '') await writeFile(path.join(tmp.dir, 'pg-password'), `${password}\n`, { mode: 0o600 });
    const { node, keyFile } = await makeNode('postgres', {
      'slots.backend': 'postgres',
      'slots.postgres.url': url.toString(),
      'slots.postgres.schema': freshSchema('eventkill'),
      ...(password !== '' ? { 'slots.postgres.password_file': path.join(tmp.dir, 'pg-password') } : {}),
    });
    await runKills(node, keyFile);
  }, 600_000);
});
