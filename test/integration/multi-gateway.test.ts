import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI, makeTempDir, startCli, stopAllCli, type CliProcess, cliOk } from '../helpers/cli.js';
import { must, rcloneOverSftp, resticLocal, resticOverSftp } from '../helpers/backup-tools.js';
import { missing, peersOrSkip, requirePeers, sftpBatch, skipNotice, type Target } from '../helpers/openssh.js';
import { freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { SWIFT_SKIP, createBucket, startSwiftServer, stopSwiftServer, type SwiftServer } from '../helpers/swift.js';

/**
 * Several `capstan run` processes (the real CLI) behind one imaginary load
 * balancer: one set of host keys, one accounts file, one chunk store and one
 * PostgreSQL slot store. Real OpenSSH sftp clients with an ed25519 key.
 *
 * The chunk store is either a shared fs directory or one bucket of a real
 * S3-compatible server (Swift with s3api) on loopback; each runs the same tests.
 *
 * Both gateways take scheduled snapshots (`[snapshots] schedule = hourly`):
 * exactly one of them takes each period's. Snapshots taken with the CLI on
 * one node are read through both gateways under /.snapshots/, also by
 * restic and rclone (docs/spec/snapshots.md).
 */

const unavailable = skipNotice(
  postgresUnavailable() ?? missing('sftp', 'ssh-keygen') ?? (existsSync(CLI) ? undefined : 'dist/cli/main.js not built (npx tsc)'),
  'multi-gateway',
);
const BACKUP_TOOLS = ['restic', 'rclone', 'ssh', 'scp'];
const noBackupTools = peersOrSkip('multi-gateway snapshots with restic and rclone', ...BACKUP_TOOLS);

/** How a pair of gateways shares one chunk store: capstan.cfg [storage] lines, given the shared directory. */
interface ChunkBackend {
  name: string;
  skip?: string | undefined;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  config(shared: string): Record<string, string>;
}

let swift: SwiftServer | undefined;

const chunkBackends: ChunkBackend[] = [
  { name: 'a shared fs directory', config: (shared) => ({ 'fs.dir': `${shared}/chunks`, 'fs.fsync': 'false' }) },
  {
    name: 'one S3 bucket (a real Swift on loopback)',
    skip: SWIFT_SKIP,
    async start() {
      swift = await startSwiftServer({ timeoutMs: 180_000 });
      await createBucket(swift, 'capstan-multi');
    },
    async stop() {
      await stopSwiftServer(swift);
      swift = undefined;
    },
    config(shared) {
      const server = swift!;
      // Both gateways read the same credentials file (two lines: key id, secret).
      writeFileSync(`${shared}/s3-credentials`, `${server.accessKeyId}\n${server.secretAccessKey}\n`, { mode: 0o600 });
      return {
        backend: 's3',
        's3.endpoint': server.endpoint,
        's3.region': server.region,
        's3.bucket': 'capstan-multi',
        's3.prefix': 'multi/',
        's3.addressing': 'path',
        's3.credentials': `${shared}/s3-credentials`,
      };
    },
  },
];

interface RunningGateway {
  node: string;
  proc: CliProcess;
  target: Target;
  http: string;
}

describe.each(chunkBackends)('several gateways on one chunk store ($name) and one PostgreSQL slot store', (backend) => {
  if (unavailable !== undefined || backend.skip !== undefined) {
    it.skip(`skipped: ${unavailable ?? backend.skip}`, () => undefined);
    return;
  }
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let pgServer: TestPostgres;
  let work: string;
  let keyFile: string;
  let nodes: string[];
  let schema: string;
  /** alice's root write cap, and bob's (another root). */
  const roots: string[] = [];
  const gateways: RunningGateway[] = [];

  async function startGateway(node: string): Promise<RunningGateway> {
    const proc = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    const sftp = await proc.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) /m, 'stderr', 30_000);
    const http = await proc.waitFor(/^capstan http on 127\.0\.0\.1:(\d+) /m);
    return { node, proc, target: { port: Number(sftp[1]), user: 'alice', keyFile }, http: `http://127.0.0.1:${http[1]}` };
  }

  async function sftpOk(g: RunningGateway, commands: string[], timeoutMs = 60_000): Promise<string> {
    const r = await sftpBatch(g.target, work, commands, [], timeoutMs);
    if (r.code !== 0) {
      // The client only says "Failure"; the gateways' warnings and errors say why.
      const why = gateways.flatMap((x) =>
        x.proc.stdout
          .split('\n')
          .filter((line) => /"level":(4|5)\d/.test(line))
          .slice(-5),
      );
      throw new Error(`sftp via :${g.target.port} failed (${r.code}): ${r.stderr}\ngateway log:\n${why.join('\n')}`);
    }
    return r.stdout;
  }

  async function listNames(g: RunningGateway, dir: string): Promise<string[]> {
    const out = await sftpOk(g, [`ls -1 ${dir}`]);
    return out
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('sftp>'))
      .map((l) => path.posix.basename(l.trim()));
  }

  async function healthStatus(g: RunningGateway): Promise<number> {
    return (await fetch(`${g.http}/healthz`)).status;
  }

  beforeAll(async () => {
    tmp = await makeTempDir('capstan-multi-');
    await backend.start?.();
    work = path.join(tmp.dir, 'work');
    await mkdir(work);
    pgServer = await startPostgres();
    const shared = path.join(tmp.dir, 'shared');
    await mkdir(path.join(shared, 'chunks'), { recursive: true });

    keyFile = path.join(tmp.dir, 'id_ed25519');
    const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@multi', '-f', keyFile]);
    if (keygen.status !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);

    schema = freshSchema('multi');
    nodes = [path.join(tmp.dir, 'gw-a'), path.join(tmp.dir, 'gw-b')];
    for (const node of nodes) await cliOk(node, ['init']);
    // One identity for the pair: gateway a's host keys, copied to the shared place both read.
    for (const k of ['ssh_host_ed25519_key', 'ssh_host_rsa_key']) {
      await copyFile(path.join(nodes[0]!, 'private', k), path.join(shared, k));
    }
    // The password goes into each node's private/postgres-password, the URL in capstan.cfg carries none.
    const dbUrl = new URL(pgServer.url);
    const password = decodeURIComponent(dbUrl.password);
    dbUrl.password = '';
    const storage: Record<string, string> = {
      ...backend.config(shared),
      'slots.backend': 'postgres',
      'slots.postgres.url': dbUrl.toString(),
      'slots.postgres.schema': schema,
      schedule: 'hourly',
    };
    for (const node of nodes) {
      if (password !== '') await writeFile(path.join(node, 'private/postgres-password'), `${password}\n`, { mode: 0o600 });
      const file = path.join(node, 'capstan.cfg');
      let text = (await readFile(file, 'utf8'))
        .replace(/^host_key_files = .*$/m, `host_key_files = ${shared}/ssh_host_ed25519_key,${shared}/ssh_host_rsa_key`)
        .replace(/^accounts\.file = .*$/m, `accounts.file = ${shared}/accounts`)
        .replace(/^(\[http\][^[]*?)^listen =.*$/m, '$1listen = 127.0.0.1:0');
      // init writes every key with its default, one per line: replace each in place.
      for (const [key, value] of Object.entries(storage)) {
        const line = new RegExp(`^${key.replace(/\./g, '\\.')} =.*$`, 'm');
        expect(text, key).toMatch(line);
        text = text.replace(line, `${key} = ${value}`);
      }
      expect(text).toContain('slots.backend = postgres');
      expect(text).toMatch(/^\[snapshots\][^[]*^schedule = hourly$/m);
      expect(text).toMatch(/^listen = 127\.0\.0\.1:0$/m);
      await writeFile(file, text);
    }
    // The account (and its root directory, a slot in PostgreSQL) is made once, through gateway a's node.
    roots.push((await cliOk(nodes[0]!, ['account', 'add', 'alice', '--key', `${keyFile}.pub`])).trim());
    roots.push((await cliOk(nodes[0]!, ['account', 'add', 'bob', '--key', `${keyFile}.pub`])).trim());
    // carol has a byte quota, in each node's quotas file; her usage counters are shared in PostgreSQL.
    await cliOk(nodes[0]!, ['account', 'add', 'carol', '--key', `${keyFile}.pub`]);
    for (const node of nodes) await writeFile(path.join(node, 'private/quotas'), 'carol bytes=1M\n');
    await writeFile(path.join(work, 'rclone.conf'), '');
    gateways.push(...(await Promise.all(nodes.map(startGateway))));
    expect(gateways[0]!.proc.stderr.match(/SHA256:\S+/)?.[0]).toBe(gateways[1]!.proc.stderr.match(/SHA256:\S+/)?.[0]);
  }, 300_000); // Swift alone may take minutes to come up on a loaded machine

  afterAll(async () => {
    await stopAllCli();
    await pgServer?.stop();
    await backend.stop?.();
    await tmp?.cleanup();
  });

  it('a file put through one gateway is listed and byte-identical through the other at once', async () => {
    const [a, b] = gateways as [RunningGateway, RunningGateway];
    const content = randomBytes(300_000);
    await writeFile(path.join(work, 'hello.bin'), content);
    await sftpOk(a, ['put hello.bin /hello.bin']);
    expect(await listNames(b, '/')).toContain('hello.bin');
    await sftpOk(b, ['get /hello.bin hello-back.bin']);
    expect((await readFile(path.join(work, 'hello-back.bin'))).equals(content)).toBe(true);
  }, 30_000);

  it('sftp cp (copy-data) through one gateway of a file put through the other: byte-identical through both', async () => {
    const [a, b] = gateways as [RunningGateway, RunningGateway];
    const content = randomBytes(700_000);
    await writeFile(path.join(work, 'to-copy.bin'), content);
    await sftpOk(b, ['put to-copy.bin /to-copy.bin']);
    await sftpOk(a, ['cp /to-copy.bin /copied.bin']);
    await sftpOk(b, ['get /copied.bin copied-back.bin', 'get /to-copy.bin to-copy-back.bin']);
    expect((await readFile(path.join(work, 'copied-back.bin'))).equals(content)).toBe(true);
    expect((await readFile(path.join(work, 'to-copy-back.bin'))).equals(content)).toBe(true);
  }, 30_000);

  /** A root's snapshots as `capstan snapshot list --json` prints them, asked through a node. */
  async function snapshotsOf(node: string, root: string): Promise<{ name: string; createdMs: number; cap: string }[]> {
    return (await cliOk(node, ['snapshot', 'list', '--json', root]))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  }

  /** Takes a snapshot of alice's root with the CLI on gateway a's node; its name under /.snapshots/. */
  async function snapshotAlice(): Promise<string> {
    const cap = (await cliOk(nodes[0]!, ['snapshot', 'create', roots[0]!])).trim();
    const named = (await snapshotsOf(nodes[1]!, roots[0]!)).find((s) => s.cap === cap);
    expect(named, 'the new snapshot, listed through the other node').toBeDefined();
    return named!.name;
  }

  it('[snapshots] schedule = hourly on both gateways: exactly one scheduled snapshot per account root and period', async () => {
    // Each gateway logs once per period whether it took the period's snapshots or saw them taken.
    const periods = await vi.waitFor(
      () => {
        const seen = gateways.map((g) => [...g.proc.stdout.matchAll(/"event":"snapshots_taken(_elsewhere)?","period":"([^"]+)"/g)]);
        for (const lines of seen) expect(lines.length).toBeGreaterThan(0);
        return seen;
      },
      { timeout: 30_000, interval: 200 },
    );
    const takers = periods.flat().filter((m) => m[1] === undefined);
    const claimed = new Set(periods.flat().map((m) => Date.parse(m[2]!)));
    // Both saw the same period (unless an hour began between their starts), and one gateway took each.
    expect(takers.map((m) => Date.parse(m[2]!)).sort()).toEqual([...claimed].sort());
    for (const root of roots) {
      const scheduled = (await snapshotsOf(nodes[1]!, root)).filter((s) => s.createdMs % 3_600_000 === 0);
      expect(scheduled.map((s) => s.createdMs).sort()).toEqual([...claimed].sort());
      for (const s of scheduled) expect(s.name).toBe(`${new Date(s.createdMs).toISOString().slice(0, 19)}Z`);
    }
  }, 60_000);

  it('a snapshot taken with the CLI keeps what clients of the other gateway change; /.snapshots/ reads it through both', async () => {
    const [a, b] = gateways as [RunningGateway, RunningGateway];
    const old = { kept: randomBytes(200_000), changed: randomBytes(150_000), removed: randomBytes(90_000), moved: randomBytes(60_000) };
    for (const [name, data] of Object.entries(old)) await writeFile(path.join(work, `old-${name}`), data);
    await sftpOk(a, [
      'mkdir /snap',
      'mkdir /snap/sub',
      'put old-kept /snap/kept.bin',
      'put old-changed /snap/changed.bin',
      'put old-removed /snap/removed.bin',
      'put old-moved /snap/sub/moved.bin',
    ]);
    const name = await snapshotAlice();
    const changed = randomBytes(1_000);
    await writeFile(path.join(work, 'new-changed'), changed);
    await sftpOk(b, ['put new-changed /snap/changed.bin', 'rm /snap/removed.bin', 'rename /snap/sub/moved.bin /snap/moved-now.bin']);

    for (const [i, g] of [a, b].entries()) {
      await sftpOk(g, [
        `get /.snapshots/${name}/snap/kept.bin ${i}-kept`,
        `get /.snapshots/${name}/snap/changed.bin ${i}-changed`,
        `get /.snapshots/${name}/snap/removed.bin ${i}-removed`,
        `get /.snapshots/${name}/snap/sub/moved.bin ${i}-moved`,
        `get /snap/changed.bin ${i}-live-changed`,
        `get /snap/moved-now.bin ${i}-live-moved`,
      ]);
      for (const [key, data] of Object.entries(old))
        expect((await readFile(path.join(work, `${i}-${key}`))).equals(data), `${i}: ${key}`).toBe(true);
      expect((await readFile(path.join(work, `${i}-live-changed`))).equals(changed)).toBe(true);
      expect((await readFile(path.join(work, `${i}-live-moved`))).equals(old.moved)).toBe(true);
      expect((await listNames(g, '/snap')).sort()).toEqual(['changed.bin', 'kept.bin', 'moved-now.bin', 'sub']);
      expect(await listNames(g, '/snap/sub')).toEqual([]);
      expect((await listNames(g, `/.snapshots/${name}/snap`)).sort()).toEqual(['changed.bin', 'kept.bin', 'removed.bin', 'sub']);
    }
  }, 60_000);

  describe.skipIf(noBackupTools)('with restic and rclone', () => {
    const alice = (g: RunningGateway) => ({ port: g.target.port, user: 'alice', keyFile });

    it('restic backs up through one gateway, forget --prune through the other; the snapshot copied out checks and restores byte-identical', async () => {
      requirePeers(...BACKUP_TOOLS);
      const [a, b] = gateways as [RunningGateway, RunningGateway];
      const source = path.join(work, 'restic-source');
      const files: Record<string, Buffer> = {
        'a.bin': randomBytes(400_000),
        'docs/b.txt': Buffer.from('the original\n'),
        'docs/c.bin': randomBytes(30_000),
      };
      for (const [name, data] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(source, name)), { recursive: true });
        await writeFile(path.join(source, name), data);
      }
      must(await resticOverSftp(alice(a), work, '/restic-repo', ['init']), 'restic init via a');
      must(await resticOverSftp(alice(a), work, '/restic-repo', ['backup', '--host', 'test', source]), 'restic backup via a');
      const name = await snapshotAlice();

      // The client (through b) forgets its only snapshot and prunes its data: the live repository is empty of it.
      const listed = JSON.parse(
        must(await resticOverSftp(alice(b), work, '/restic-repo', ['snapshots', '--json']), 'restic snapshots').stdout,
      );
      expect(listed).toHaveLength(1);
      must(await resticOverSftp(alice(b), work, '/restic-repo', ['forget', '--prune', listed[0].id]), 'restic forget --prune via b');
      expect(
        JSON.parse(must(await resticOverSftp(alice(b), work, '/restic-repo', ['snapshots', '--json']), 'restic snapshots').stdout),
      ).toEqual([]);

      // The operator copies the snapshot's repository out with OpenSSH sftp (through a) and restores from it.
      await sftpOk(a, [`get -r /.snapshots/${name}/restic-repo restic-copy`], 180_000);
      const copy = path.join(work, 'restic-copy');
      must(await resticLocal(copy, work, ['check', '--read-data']), 'restic check --read-data of the copy');
      const restored = path.join(work, 'restic-restored');
      must(await resticLocal(copy, work, ['restore', 'latest', '--target', restored]), 'restic restore of the copy');
      for (const [name, data] of Object.entries(files)) {
        expect((await readFile(path.join(restored, source, name))).equals(data), name).toBe(true);
      }
    }, 600_000);

    it('rclone copies a snapshot out through the other gateway: the old bytes', async () => {
      requirePeers(...BACKUP_TOOLS);
      const [a, b] = gateways as [RunningGateway, RunningGateway];
      const old = { 'one.bin': randomBytes(120_000), 'sub/two.txt': Buffer.from('two\n') };
      await writeFile(path.join(work, 'rc-one'), old['one.bin']);
      await writeFile(path.join(work, 'rc-two'), old['sub/two.txt']);
      await sftpOk(a, ['mkdir /rc', 'mkdir /rc/sub', 'put rc-one /rc/one.bin', 'put rc-two /rc/sub/two.txt']);
      const name = await snapshotAlice();
      await sftpOk(a, ['rm /rc/one.bin', 'put rc-one /rc/sub/two.txt']);
      const out = path.join(work, 'rc-out');
      must(await rcloneOverSftp(alice(b), work, ['copy', `:sftp:/.snapshots/${name}/rc`, out]), 'rclone copy');
      for (const [file, data] of Object.entries(old)) expect((await readFile(path.join(out, file))).equals(data), file).toBe(true);
    }, 300_000);
  });

  it('8 clients on each gateway putting 25 files each into one directory at once: exactly 400 entries, none gave up', async () => {
    const [a] = gateways as [RunningGateway, RunningGateway];
    await sftpOk(a, ['mkdir /race']);
    const small = path.join(work, 'small.txt');
    await writeFile(small, 'x'.repeat(100));
    const started = Date.now();
    const results = await Promise.all(
      gateways.flatMap((g, gi) =>
        Array.from({ length: 8 }, (_, ci) =>
          sftpOk(
            g,
            Array.from({ length: 25 }, (_, i) => `put small.txt /race/g${gi}-c${ci}-${String(i).padStart(2, '0')}.txt`),
            80_000,
          ),
        ),
      ),
    );
    expect(results).toHaveLength(16);
    const viaA = await listNames(gateways[0]!, '/race');
    const viaB = await listNames(gateways[1]!, '/race');
    expect(viaA).toHaveLength(400);
    expect(new Set(viaA).size).toBe(400);
    expect(viaB.sort()).toEqual(viaA.sort());
    // Contention (issue 13, item 7): the longest retry chain of any directory update, per gateway.
    const longest: number[] = [];
    for (const g of gateways) {
      const metrics = await (await fetch(`${g.http}/metrics`)).text();
      expect(metrics).toMatch(/^capstan_directory_updates_gave_up_total 0$/m);
      longest.push(Number(/^capstan_directory_update_attempts_max (\d+)$/m.exec(metrics)![1]));
    }
    console.info(
      `multi-gateway (${backend.name}): 400 concurrent puts by 16 clients through 2 gateways in ${Date.now() - started} ms; ` +
        `longest retry chain ${Math.max(...longest)} compare-and-swaps (per gateway: ${longest.join(', ')})`,
    );
  }, 120_000);

  it('a quota holds across gateways: of 6 uploads closing at once through both, exactly those that fit land, and the shared counters equal a recount', async () => {
    const carol = (g: RunningGateway): RunningGateway => ({ ...g, target: { ...g.target, user: 'carol' } });
    const bodies = Array.from({ length: 6 }, () => randomBytes(300 * 1024));
    for (const [i, body] of bodies.entries()) await writeFile(path.join(work, `q${i}.bin`), body);
    const runs = await Promise.all(
      bodies.map((_, i) => sftpBatch(carol(gateways[i % 2] as RunningGateway).target, work, [`put q${i}.bin /q${i}.bin`], [], 60_000)),
    );
    const acknowledged = runs.flatMap((r, i) => (r.code === 0 ? [i] : []));
    // 1 MiB holds three files of 300 KiB, not four, whichever gateway each went through.
    expect(acknowledged).toHaveLength(3);
    for (const [i, r] of runs.entries()) if (r.code !== 0) expect(r.stderr, `upload ${i}`).toMatch(/Failure|quota/);
    for (const g of gateways) {
      const got = path.join(work, `got-${g.target.port}`);
      await mkdir(got, { recursive: true });
      const listed = await listNames(carol(g), '/');
      expect(listed.filter((n) => n.startsWith('q')).sort()).toEqual(acknowledged.map((i) => `q${i}.bin`));
      await sftpOk(
        carol(g),
        acknowledged.map((i) => `get /q${i}.bin ${got}/q${i}.bin`),
      );
      for (const i of acknowledged) expect((await readFile(path.join(got, `q${i}.bin`))).equals(bodies[i]!)).toBe(true);
    }
    // A rename over a name through one gateway frees what it replaced for uploads through the other.
    const [first, second] = acknowledged as [number, number];
    await sftpOk(carol(gateways[0]!), [`rename /q${first}.bin /q${second}.bin`]);
    await sftpOk(carol(gateways[1]!), [`put q0.bin /again.bin`]);
    const counters = async () => {
      const client = new pg.Client({ connectionString: pgServer.url });
      await client.connect();
      try {
        const rows = await client.query(`SELECT bytes::int, files::int FROM "${schema}".capstan_quota_usage WHERE account = 'carol'`);
        return rows.rows[0] as { bytes: number; files: number };
      } finally {
        await client.end();
      }
    };
    expect(await counters()).toEqual({ bytes: 3 * 300 * 1024, files: 3 });
    const recount = await cliOk(nodes[1]!, ['account', 'set', 'carol', '--recount']);
    expect(recount).toContain(`${3 * 300 * 1024} bytes in 3 files`);
  }, 120_000);

  it('a gateway killed with SIGKILL mid-upload loses nothing acknowledged; the other keeps serving', async () => {
    const [a, b] = gateways as [RunningGateway, RunningGateway];
    await sftpOk(b, ['mkdir /crash']);
    const acknowledged: { name: string; content: Buffer }[] = [];
    for (let i = 0; i < 5; i++) {
      const content = randomBytes(50_000 + i);
      await writeFile(path.join(work, `ack-${i}.bin`), content);
      await sftpOk(b, [`put ack-${i}.bin /crash/ack-${i}.bin`]);
      acknowledged.push({ name: `ack-${i}.bin`, content });
    }
    // A large upload in flight when the gateway dies.
    const big = randomBytes(64 * 1024 * 1024);
    await writeFile(path.join(work, 'big.bin'), big);
    const inFlight = sftpBatch(b.target, work, ['put big.bin /crash/big.bin'], [], 60_000);
    await new Promise((r) => setTimeout(r, 400));
    expect(await b.proc.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    expect((await inFlight).code).not.toBe(0);

    const names = await listNames(a, '/crash');
    for (const { name, content } of acknowledged) {
      expect(names).toContain(name);
      await sftpOk(a, [`get /crash/${name} back-${name}`]);
      expect((await readFile(path.join(work, `back-${name}`))).equals(content), name).toBe(true);
    }
    // The killed upload was never committed: absent, never partial.
    expect(names).not.toContain('big.bin');
    // a keeps serving, reads and writes.
    await sftpOk(a, ['put ack-0.bin /crash/after.bin']);
    expect(await listNames(a, '/crash')).toContain('after.bin');
    expect(await healthStatus(a)).toBe(200);
  }, 60_000);

  it.skipIf(process.env.CAPSTAN_TEST_POSTGRES_URL !== undefined)(
    '/healthz is 503 while PostgreSQL is down and 200 again once it is back',
    async () => {
      const [a] = gateways as [RunningGateway, RunningGateway];
      expect(await healthStatus(a)).toBe(200);
      await pgServer.pause();
      try {
        const res = await fetch(`${a.http}/healthz`);
        expect(res.status).toBe(503);
        expect(await res.text()).toMatch(/^unhealthy: slot store: /m);
      } finally {
        await pgServer.resume();
      }
      expect(await healthStatus(a)).toBe(200);
      // And it serves again without a restart.
      expect(await listNames(a, '/')).toContain('hello.bin');
    },
    30_000,
  );
});
