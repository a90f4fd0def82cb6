import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI, cliAt, makeTempDir, runCli, stopAllCli } from '../helpers/cli.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { missing, sftpBatch, skipNotice, type RunResult, type Target, sftpOk } from '../helpers/openssh.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { Ssh2Sessions } from '../sftp/gateway-fixture.js';

/**
 * The file exchange of issue 18, walked end to end as an operator and three
 * users would: a real `capstan run` (the embedded default, then PostgreSQL
 * slots), `capstan account add` and `capstan exchange` run while it serves,
 * and real OpenSSH sftp clients for two senders and a processor.
 */

const unavailable = skipNotice(
  missing('sftp', 'ssh-keygen') ?? (existsSync(CLI) ? undefined : 'dist/cli/main.js not built (npm run build)'),
  'file exchange',
);
const CLAIM_ROUNDS = Number(process.env.CAPSTAN_CLAIM_ROUNDS ?? 4);

const backends = [
  { name: 'embedded default', postgres: false, skip: undefined },
  { name: 'PostgreSQL slots', postgres: true, skip: postgresUnavailable() },
];

/** Names `ls -1 DIR` printed (sftp -b echoes each command as `sftp> …`; those lines are dropped). */
function listed(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('sftp>'))
    .map((l) => path.posix.basename(l))
    .sort();
}

describe.each(backends)('file exchange through OpenSSH sftp ($name)', (backend) => {
  const skip = unavailable ?? backend.skip;
  if (skip !== undefined) {
    it.skip(`skipped: ${skip}`, () => undefined);
    return;
  }
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let pg: TestPostgres | undefined;
  let cluster: Cluster;
  let node: string;
  let work: string;
  const roots: Record<string, string> = {};
  const sessions = new Ssh2Sessions();
  /** `user` through gateway `g` (there are two with PostgreSQL slots, one on the embedded default). */
  const as = (user: string, g = 0): Target => ({
    port: cluster.gateways[g % cluster.gateways.length]!.port,
    user,
    keyFile: cluster.keyFile,
  });

  const { ok: cli } = cliAt(() => node);
  async function sftp(user: string, commands: string[], g = 0): Promise<RunResult> {
    return sftpBatch(as(user, g), work, commands);
  }
  const ok = (user: string, commands: string[], g = 0): Promise<string> => sftpOk(as(user, g), work, commands);
  const ls = async (user: string, dir: string, g = 0): Promise<string[]> => listed(await ok(user, [`ls -1 ${dir}`], g));
  async function local(name: string, content: Buffer | string): Promise<string> {
    await writeFile(path.join(work, name), content);
    return name;
  }

  beforeAll(async () => {
    tmp = await makeTempDir('capstan-exchange-');
    work = tmp.dir;
    if (backend.postgres) pg = await startPostgres();
    cluster = await startCluster(tmp.dir, { gateways: backend.postgres ? 2 : 1, postgres: pg, users: ['proc'] });
    node = cluster.gateways[0]!.node;
    roots.proc = cluster.root;
    // The senders are added while the gateway runs; it reloads the accounts file by itself.
    for (const user of ['alice', 'bob']) roots[user] = (await cli(['account', 'add', user, '--key', `${cluster.keyFile}.pub`])).trim();
    for (let g = 0; g < cluster.gateways.length; g++) {
      await vi.waitFor(async () => expect((await sftp('bob', ['ls'], g)).code).toBe(0), { timeout: 20_000, interval: 200 });
    }
    const made = (await cli(['exchange', '--json', 'proc', 'alice', 'bob']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(made).toEqual([
      { user: 'proc', role: 'processor', created: ['proc:/inboxes', 'proc:/outboxes', 'proc:/processing'] },
      { user: 'alice', role: 'sender', created: ['alice:/input', 'proc:/outboxes/alice', 'proc:/inboxes/alice', 'alice:/output'] },
      { user: 'bob', role: 'sender', created: ['bob:/input', 'proc:/outboxes/bob', 'proc:/inboxes/bob', 'bob:/output'] },
    ]);
  }, 180_000);
  afterAll(async () => {
    sessions.endAll();
    await stopAllCli();
    await pg?.stop();
    await tmp?.cleanup();
  });

  it('lays out each root; running it again changes nothing', async () => {
    expect(await ls('alice', '.')).toEqual(['input', 'output']);
    expect(await ls('proc', '.')).toEqual(['inboxes', 'outboxes', 'processing']);
    expect(await ls('proc', 'inboxes')).toEqual(['alice', 'bob']);
    expect(await ls('proc', 'outboxes')).toEqual(['alice', 'bob']);
    const again = (await cli(['exchange', '--json', 'proc', 'alice', 'bob']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(again.map((l: { created: string[] }) => l.created)).toEqual([[], [], []]);
    const text = await cli(['exchange', 'proc', 'bob']);
    expect(text).not.toMatch(/CS1:/);
    // An account given another's root would see that account's folders: refused, nothing made.
    await cli(['account', 'add', 'mallory', '--key', `${cluster.keyFile}.pub`, '--root', roots.alice!]);
    const shared = await runCli(['-d', node, 'exchange', 'proc', 'mallory']);
    expect(shared.code).toBe(1);
    expect(shared.stderr).toBe('capstan: mallory and alice have the same root directory; each needs one of its own\n');
  });

  it('a file appears in the inbox only once its close is acknowledged, complete', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 17);
    const { sftp: raw } = await sessions.open(as('alice').port, 'alice', { privateKey: await readFile(cluster.keyFile) });
    const handle = await new Promise<Buffer>((resolve, reject) =>
      raw.open('input/partial.bin', 'w', (err, h) => (err ? reject(err) : resolve(h))),
    );
    const write = (from: number, to: number) =>
      new Promise<void>((resolve, reject) => raw.write(handle, content, from, to - from, from, (err) => (err ? reject(err) : resolve())));
    const half = Math.floor(content.length / 2);
    for (let at = 0; at < half; at += 32 * 1024) await write(at, Math.min(half, at + 32 * 1024));
    expect(await ls('proc', 'inboxes/alice')).not.toContain('partial.bin');
    for (let at = half; at < content.length; at += 32 * 1024) await write(at, Math.min(content.length, at + 32 * 1024));
    expect(await ls('proc', 'inboxes/alice')).not.toContain('partial.bin');
    await new Promise<void>((resolve, reject) => raw.close(handle, (err) => (err ? reject(err) : resolve())));
    // Acknowledged: listed at once, and whole.
    expect(await ls('proc', 'inboxes/alice')).toContain('partial.bin');
    await ok('proc', ['get inboxes/alice/partial.bin partial.back']);
    expect((await readFile(path.join(work, 'partial.back'))).equals(content)).toBe(true);
    await ok('alice', ['rm input/partial.bin']);
  });

  it(`rename into processing/ is an atomic claim: two processors racing for one file, exactly one wins (${CLAIM_ROUNDS} rounds)`, async () => {
    await ok('proc', ['mkdir processing/w1', 'mkdir processing/w2']);
    for (let i = 0; i < CLAIM_ROUNDS; i++) {
      const content = randomBytes(100_000 + i);
      await ok('alice', [`put ${await local(`job-${i}`, content)} input/job-${i}`]);
      // Even rounds: both claim the same name in processing/; odd rounds: each into its own worker directory.
      const to = i % 2 === 0 ? [`processing/job-${i}`, `processing/job-${i}`] : [`processing/w1/job-${i}`, `processing/w2/job-${i}`];
      // Two processors, each on a gateway of its own when there are two.
      const results = await Promise.all(to.map((dst, g) => sftp('proc', [`rename inboxes/alice/job-${i} ${dst}`], g)));
      expect(results.filter((r) => r.code === 0)).toHaveLength(1);
      expect(await ls('alice', 'input')).not.toContain(`job-${i}`);
      const places = [
        ...(await ls('proc', 'processing')).map((n) => `processing/${n}`),
        ...(await ls('proc', 'processing/w1')).map((n) => `processing/w1/${n}`),
        ...(await ls('proc', 'processing/w2')).map((n) => `processing/w2/${n}`),
      ].filter((p) => p.endsWith(`/job-${i}`));
      expect(places).toEqual([to[results.findIndex((r) => r.code === 0)]]);
      await ok('proc', [`get ${places[0]} job-${i}.back`]);
      expect((await readFile(path.join(work, `job-${i}.back`))).equals(content)).toBe(true);
    }
  });

  it('the processor writes a result into outboxes/SENDER; the sender reads it from output/ and cannot change it', async () => {
    const result = randomBytes(50_000);
    await ok('proc', [`put ${await local('result.bin', result)} outboxes/alice/result.bin`]);
    await ok('alice', ['get output/result.bin result.back']);
    expect((await readFile(path.join(work, 'result.back'))).equals(result)).toBe(true);
    for (const attempt of [
      'put result.bin output/mine.bin',
      'rm output/result.bin',
      'mkdir output/d',
      'rename output/result.bin input/stolen.bin',
      'rename output/result.bin output/renamed.bin',
    ]) {
      expect((await sftp('alice', [attempt])).code, attempt).not.toBe(0);
    }
    expect(await ls('alice', 'output')).toEqual(['result.bin']);
    expect(await ls('alice', 'input')).toEqual([]);
  });

  it("neither sender sees the other's files, through .. or the processor's links", async () => {
    await ok('bob', [`put ${await local('bob.txt', 'from bob')} input/bob.txt`]);
    expect(await ls('bob', '..')).toEqual(['input', 'output']);
    expect(await ls('bob', '/../..')).toEqual(['input', 'output']);
    expect(await ls('bob', 'input')).toEqual(['bob.txt']);
    expect(await ls('bob', 'output')).toEqual([]);
    expect(await ls('alice', 'input')).toEqual([]);
    expect((await sftp('bob', ['ls /inboxes'])).code).not.toBe(0);
    // /uri/ opens only a cap the client holds: bob holds none of alice's, and a made-up one names nothing.
    expect((await sftp('bob', ['ls /uri'])).code).not.toBe(0);
    expect((await sftp('bob', ['ls /uri/CS1:DIR:aaaaaaaaaaaaaaaa'])).code).not.toBe(0);
    expect(await ls('proc', 'inboxes/bob')).toEqual(['bob.txt']);
  });

  it('capstan ln while the gateway runs: a file linked into an outbox is read by its sender, byte for byte', async () => {
    const claimed = (await ls('proc', 'processing')).find((n) => n.startsWith('job-'))!;
    await cli(['ln', `${roots.proc}/processing/${claimed}`, `${roots.proc}/outboxes/bob/${claimed}`]);
    const refused = await runCli(['-d', node, 'ln', `${roots.proc}/processing/${claimed}`, `${roots.proc}/outboxes/bob/${claimed}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).not.toMatch(/CS1:/);
    await ok('proc', [`get processing/${claimed} linked.want`]);
    await ok('bob', [`get output/${claimed} linked.got`], 1);
    expect((await readFile(path.join(work, 'linked.got'))).equals(await readFile(path.join(work, 'linked.want')))).toBe(true);
  });

  it("rmdir of the sender's name for its input leaves the processor's link fully working", async () => {
    await ok('alice', ['rmdir input']);
    expect(await ls('alice', '.')).toEqual(['output']);
    // The processor looks through the other gateway, when there is one.
    expect(await ls('proc', 'inboxes/alice', 1)).toEqual([]);
    const late = randomBytes(20_000);
    await ok('proc', [`put ${await local('late.bin', late)} inboxes/alice/late.bin`, 'mkdir inboxes/alice/sub'], 1);
    expect(await ls('proc', 'inboxes/alice', 1)).toEqual(['late.bin', 'sub']);
    await ok('proc', ['get inboxes/alice/late.bin late.back']);
    expect((await readFile(path.join(work, 'late.back'))).equals(late)).toBe(true);
    // The same holds the other way round: the processor's rmdir of its outbox name leaves alice's read-only output.
    await ok('proc', ['rm outboxes/alice/result.bin', 'rmdir outboxes/alice']);
    expect(await ls('alice', 'output')).toEqual([]);
  });

  it("adding a sender later touches no one else's tree; removing a sender's link cuts the processor's view at once", async () => {
    const before = await Promise.all(['alice', 'bob'].map((u) => cli(['ls', '--json', roots[u]!])));
    roots.carol = (await cli(['account', 'add', 'carol', '--key', `${cluster.keyFile}.pub`])).trim();
    const made = (await cli(['exchange', '--json', 'proc', 'carol']))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(made).toEqual([
      { user: 'proc', role: 'processor', created: [] },
      { user: 'carol', role: 'sender', created: ['carol:/input', 'proc:/outboxes/carol', 'proc:/inboxes/carol', 'carol:/output'] },
    ]);
    expect(await Promise.all(['alice', 'bob'].map((u) => cli(['ls', '--json', roots[u]!])))).toEqual(before);
    expect(await ls('proc', 'inboxes')).toEqual(['alice', 'bob', 'carol']);

    await cli(['rm', '-r', `${roots.proc}/inboxes/bob`]);
    for (let g = 0; g < cluster.gateways.length; g++) {
      expect((await sftp('proc', ['ls inboxes/bob'], g)).code).not.toBe(0);
      expect(listed((await sftp('proc', ['ls -1 inboxes'], g)).stdout)).toEqual(['alice', 'carol']);
    }
    expect(await ls('bob', 'input')).toEqual(['bob.txt']);
  });

  it("a directory renamed over the processor's (empty) link to a sender's input replaces that name only: the input is not sealed", async () => {
    // OpenSSH's rename is posix-rename@openssh.com, which may replace an empty directory (as rename(2)).
    for (let g = 0; g < cluster.gateways.length; g++) {
      await vi.waitFor(async () => expect((await sftp('carol', ['ls'], g)).code).toBe(0), { timeout: 20_000, interval: 200 });
    }
    await ok('proc', ['mkdir spare', 'rename spare inboxes/carol']);
    expect(await ls('proc', 'inboxes/carol')).toEqual([]);
    const data = randomBytes(10_000);
    await ok('carol', [`put ${await local('carol.bin', data)} input/carol.bin`], 1);
    expect(await ls('carol', 'input')).toEqual(['carol.bin']);
    expect(await ls('proc', 'inboxes/carol')).toEqual([]);
    await ok('carol', ['get input/carol.bin carol.back']);
    expect((await readFile(path.join(work, 'carol.back'))).equals(data)).toBe(true);
  });
});
