import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI, cliOk, makeTempDir, startCli, stopAllCli, type CliProcess } from '../helpers/cli.js';
import { Haproxy, haproxyConfigFromDocs, haproxyMissing } from '../helpers/haproxy.js';
import { fuseUnavailable, missing, mountSshfs, run, sftpBatch, skipNotice, type Target } from '../helpers/openssh.js';
import { freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { freePort } from '../helpers/rabbitmq.js';
import { bannerSent } from '../helpers/ssh-banner.js';
import { SWIFT_SKIP, createBucket, startSwiftServer, stopSwiftServer, type SwiftServer } from '../helpers/swift.js';

/**
 * A real load balancer: HAProxy, configured exactly as docs/operations.md
 * shows (haproxyConfigFromDocs only swaps the port numbers), in TCP mode with
 * PROXY protocol v2 and /healthz checks, in front of three `capstan run`
 * gateways sharing one host key, one accounts file, one PostgreSQL (slots
 * and the defender's bans) and one S3 bucket on a loopback Swift. Clients are
 * OpenSSH's sftp (several at once), sshfs with four connections, and ssh2
 * for password guesses; a client chooses its source address in 127.0.0.0/8,
 * so one test is many clients.
 */

const unavailable = skipNotice(
  haproxyMissing() ??
    postgresUnavailable() ??
    SWIFT_SKIP ??
    missing('sftp', 'ssh-keygen') ??
    (existsSync(CLI) ? undefined : 'dist/cli/main.js not built (npx tsc)'),
  'HAProxy in front of three gateways',
);

const noSshfs = unavailable ?? skipNotice(fuseUnavailable() ?? missing('sshfs', 'git'), 'sshfs through HAProxy');

/** The ports docs/operations.md's haproxy.cfg names, in order: frontend, SFTP gw1..3, HTTP gw1..3, stats. */
const DOC_PORTS = [2222, 2201, 2202, 2203, 9101, 9102, 9103, 8404] as const;
const ATTACKER = '127.0.0.7';
const THRESHOLD = 6;

interface RunningGateway {
  name: string;
  node: string;
  sftpPort: number;
  httpPort: number;
  proc: CliProcess;
  target: Target;
}

describe.skipIf(unavailable !== undefined)('HAProxy in front of three gateways (PostgreSQL slots, S3 chunks)', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let swift: SwiftServer | undefined;
  let pg: TestPostgres;
  let haproxy: Haproxy | undefined;
  let work: string;
  let keyFile: string;
  let ports: Record<number, number>;
  const gateways: RunningGateway[] = [];
  let front: Target;

  // Generous: init makes an RSA key, slow on a loaded 2-core machine.
  const cli = (node: string, args: string[]): Promise<string> => cliOk(node, args, undefined, { timeoutMs: 120_000 });

  async function start(g: Omit<RunningGateway, 'proc'>): Promise<RunningGateway> {
    const proc = startCli(['run', '-d', g.node, '--listen', `127.0.0.1:${g.sftpPort}`]);
    await proc.waitFor(/^capstan listening on 127\.0\.0\.1:\d+ /m, 'stderr', 60_000);
    await proc.waitFor(/^capstan http on 127\.0\.0\.1:\d+ /m, 'stderr', 10_000);
    return { ...g, proc };
  }

  async function sftpOk(t: Target, commands: string[], timeoutMs = 90_000): Promise<string> {
    const r = await sftpBatch(t, work, commands, [], timeoutMs);
    if (r.code !== 0) throw new Error(`sftp via :${t.port} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  async function listNames(t: Target, dir: string): Promise<string[]> {
    const out = await sftpOk(t, [`ls -1 ${dir}`]);
    return out
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('sftp>'))
      .map((l) => path.posix.basename(l.trim()))
      .sort();
  }

  const states = () => Haproxy.serverStates(ports[8404]!, 'capstan');
  const logLines = (g: RunningGateway) =>
    g.proc.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    tmp = await makeTempDir('capstan-haproxy-');
    work = path.join(tmp.dir, 'work');
    await mkdir(work);
    const shared = path.join(tmp.dir, 'shared');
    await mkdir(shared);
    [swift, pg] = await Promise.all([startSwiftServer({ timeoutMs: 120_000 }), startPostgres()]);
    await createBucket(swift, 'capstan-lb');
    ports = Object.fromEntries(await Promise.all(DOC_PORTS.map(async (p) => [p, await freePort()] as const)));

    keyFile = path.join(tmp.dir, 'id_ed25519');
    const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@lb', '-f', keyFile]);
    if (keygen.status !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);
    writeFileSync(path.join(shared, 's3-credentials'), `${swift.accessKeyId}\n${swift.secretAccessKey}\n`, { mode: 0o600 });

    const schema = freshSchema('lb');
    const dbUrl = new URL(pg.url);
    const password = decodeURIComponent(dbUrl.password);
    dbUrl.password = '';
    const names = ['gw1', 'gw2', 'gw3'];
    const specs = names.map((name, i) => ({
      name,
      node: path.join(tmp.dir, name),
      sftpPort: ports[DOC_PORTS[1 + i]!]!,
      httpPort: ports[DOC_PORTS[4 + i]!]!,
    }));
    for (const { node } of specs) await cli(node, ['init']);
    for (const k of ['ssh_host_ed25519_key', 'ssh_host_rsa_key'])
      await copyFile(path.join(specs[0]!.node, 'private', k), path.join(shared, k));
    const settings: Record<string, string> = {
      host_key_files: `${shared}/ssh_host_ed25519_key,${shared}/ssh_host_rsa_key`,
      'accounts.file': `${shared}/accounts`,
      // HAProxy's own address (its `source`): only its connections carry a PROXY header.
      proxy_protocol: '127.0.0.2',
      backend: 's3',
      's3.endpoint': swift.endpoint,
      's3.region': swift.region,
      's3.bucket': 'capstan-lb',
      's3.prefix': 'lb/',
      's3.addressing': 'path',
      's3.credentials': `${shared}/s3-credentials`,
      'slots.backend': 'postgres',
      'slots.postgres.url': dbUrl.toString(),
      'slots.postgres.schema': schema,
      threshold: String(THRESHOLD),
      failure_delay: '0',
    };
    for (const spec of specs) {
      if (password !== '') await writeFile(path.join(spec.node, 'private/postgres-password'), `${password}\n`, { mode: 0o600 });
      const file = path.join(spec.node, 'capstan.cfg');
      let text = (await readFile(file, 'utf8')).replace(/^(\[http\][^[]*?)^listen =.*$/m, `$1listen = 127.0.0.1:${spec.httpPort}`);
      for (const [key, value] of Object.entries(settings)) {
        const line = new RegExp(`^${key.replace(/\./g, '\\.')} =.*$`, 'm');
        expect(text, key).toMatch(line);
        text = text.replace(line, `${key} = ${value}`);
      }
      await writeFile(file, text);
    }
    await cli(specs[0]!.node, ['account', 'add', 'alice', '--key', `${keyFile}.pub`]);
    gateways.push(...(await Promise.all(specs.map((s) => start({ ...s, target: { port: s.sftpPort, user: 'alice', keyFile } })))));

    haproxy = await Haproxy.start(await haproxyConfigFromDocs(ports), ports[2222]!);
    front = { port: ports[2222]!, user: 'alice', keyFile };
    await vi.waitFor(async () => expect(await states()).toEqual({ gw1: 'UP', gw2: 'UP', gw3: 'UP' }), { timeout: 30_000, interval: 200 });
  }, 240_000);

  afterAll(async () => {
    await haproxy?.stop();
    await stopAllCli();
    await pg?.stop();
    await stopSwiftServer(swift);
    await tmp?.cleanup();
  });

  /** One password guess as the attacker (one connection, as scanners do): 'refused', or 'closed' before authentication. */
  function guess(port: number): Promise<'ok' | 'refused' | 'closed'> {
    return new Promise((resolve) => {
      const client = new ssh2.Client();
      client.once('ready', () => {
        client.end();
        resolve('ok');
      });
      client.once('error', (err: Error & { level?: string }) => resolve(err.level === 'client-authentication' ? 'refused' : 'closed'));
      client.once('close', () => resolve('closed'));
      client.connect({
        host: '127.0.0.1',
        port,
        localAddress: ATTACKER,
        username: 'alice',
        password: 'not-her-password',
        tryKeyboard: false,
        readyTimeout: 20_000,
      });
    });
  }

  it('sees the real client through the PROXY protocol: guesses spread over the gateways count once, and the ban holds at every gateway', async () => {
    // One guess short of the threshold, through HAProxy and straight to each gateway (HAProxy sends every
    // connection of one address to the same gateway): no ban yet, and more than one gateway took guesses.
    for (let i = 0; i < THRESHOLD - 1; i++) expect(await guess(i % 2 === 0 ? front.port : gateways[i % 3]!.sftpPort)).toBe('refused');
    const failedAt = () => gateways.map((g) => logLines(g).filter((l) => l.event === 'auth_failed' && l.remoteAddress === ATTACKER).length);
    // (A gateway's log line reaches us through a pipe, possibly after the client heard the refusal.)
    await vi.waitFor(() => expect(failedAt().reduce((a, b) => a + b, 0)).toBe(THRESHOLD - 1), { timeout: 5_000, interval: 20 });
    expect(failedAt().filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(gateways.flatMap(logLines).some((l) => l.event === 'ban')).toBe(false);
    // The logs name the client, never HAProxy's 127.0.0.2.
    expect(gateways.flatMap(logLines).some((l) => l.remoteAddress === '127.0.0.2')).toBe(false);

    expect(await guess(front.port)).not.toBe('ok');
    const bannedAt = Date.now();
    const bans = () => gateways.flatMap(logLines).filter((l) => l.event === 'ban');
    await vi.waitFor(() => expect(bans()).toHaveLength(1), { timeout: 5_000, interval: 20 });
    expect(bans()[0]).toMatchObject({ remoteAddress: ATTACKER, offences: 1 });
    // Every gateway refuses the attacker before its SSH banner, directly and through HAProxy, within a refresh.
    await vi.waitFor(
      async () => {
        for (const g of gateways) expect(await bannerSent(g.sftpPort, '127.0.0.1', ATTACKER), g.name).toBe(false);
      },
      { timeout: 10_000, interval: 50 },
    );
    const everywhereMs = Date.now() - bannedAt;
    for (let i = 0; i < 3; i++) expect(await bannerSent(front.port, '127.0.0.1', ATTACKER)).toBe(false);
    console.info(`haproxy: a ban decided at one gateway refused the client at all three within ${everywhereMs} ms`);
    expect(everywhereMs).toBeLessThan(5_000);
    // Everyone else is served, through HAProxy and directly.
    expect(await listNames(front, '/')).toEqual([]);
    for (const g of gateways) expect(await bannerSent(g.sftpPort)).toBe(true);

    // The operator lifts the ban from any node's CLI while the gateways run; they all let the client in again.
    const listed = (await cli(gateways[2]!.node, ['ban', 'list'])).trim().split('\n');
    expect(listed.map((l) => l.split('\t')[0])).toEqual([ATTACKER]);
    expect(await cli(gateways[2]!.node, ['ban', 'remove', ATTACKER])).toBe(`unbanned ${ATTACKER}\n`);
    await vi.waitFor(
      async () => {
        for (const g of gateways) expect(await bannerSent(g.sftpPort, '127.0.0.1', ATTACKER), g.name).toBe(true);
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(await bannerSent(front.port, '127.0.0.1', ATTACKER)).toBe(true);
  }, 120_000);

  it.skipIf(noSshfs !== undefined)(
    'an sshfs mount with four connections lands on one gateway: git, and files renamed or removed as they close, work as on one',
    async () => {
      const CLIENT = '127.0.0.30';
      const mnt = path.join(work, 'mnt');
      await mkdir(mnt);
      const mount = await mountSshfs(front, mnt, ['max_conns=4', `BindAddress=${CLIENT}`]);
      try {
        const sh = async (script: string): Promise<string> => {
          // cwd outside the mount; the script cds into it.
          const r = await run('bash', ['-euo', 'pipefail', '-c', script], {
            cwd: work,
            timeoutMs: 120_000,
            env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.org' },
          });
          if (r.code !== 0) throw new Error(`shell step failed (${r.code}): ${script}\n${r.stderr}`);
          return r.stdout;
        };
        await sh(`cd "${mnt}" && git init -q -b main repo && cd repo && for i in $(seq 1 20); do echo "$i" > "f$i"; done
        git add -A && git commit -qm one && echo more >> f1 && git commit -qam two
        mkdir ../loops && cd ../loops
        for i in $(seq 1 20); do printf "v$i" > "tmp.$i" && mv "tmp.$i" "kept.$i"; printf x > "gone.$i" && rm "gone.$i"; done`);
        expect(await sh(`cd "${mnt}/repo" && git status --porcelain && find .git -name '*.lock' && git log --format=%s`)).toBe(
          'two\none\n',
        );
      } finally {
        await mount.unmount();
      }
      // All four connections went to one gateway.
      const connectsAt = gateways.map((g) => logLines(g).filter((l) => l.event === 'connect' && l.remoteAddress === CLIENT).length);
      expect(
        connectsAt.filter((n) => n > 0),
        String(connectsAt),
      ).toEqual([4]);
      // What was stored, read through another gateway directly.
      const other = gateways[connectsAt.indexOf(0)]!;
      const back = path.join(work, 'sshfs-back');
      await mkdir(back);
      await sftpOk(other.target, [`get -r /repo ${back}/repo`, `get -r /loops ${back}/loops`]);
      expect((await readdir(path.join(back, 'loops'))).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `kept.${i + 1}`).sort());
      expect(await readFile(path.join(back, 'loops', 'kept.7'), 'utf8')).toBe('v7');
      const git = (...args: string[]) => spawnSync('git', ['-C', path.join(back, 'repo'), ...args], { encoding: 'utf8' }).stdout;
      expect(git('log', '--format=%s') + git('status', '--porcelain')).toBe('two\none\n');
    },
    300_000,
  );

  it('uploads through HAProxy while a gateway is SIGKILLed and PostgreSQL restarts: nothing acknowledged is lost, every gateway lists the same', async () => {
    await sftpOk(front, ['mkdir /lb']);
    const contents = new Map<string, Buffer>();
    const acked: string[] = [];
    let failedBatches = 0;
    let stopping = false;
    const CLIENTS = 4;

    async function client(n: number): Promise<void> {
      for (let i = 0, backoff = 100; !stopping; ) {
        const name = `c${n}-${String(i).padStart(3, '0')}.bin`;
        if (!contents.has(name)) {
          const content = randomBytes(20_000 + ((n * 7919 + i * 104_729) % 150_000));
          contents.set(name, content);
          await writeFile(path.join(work, name), content);
        }
        // Each client from an address of its own: HAProxy keeps an address on one gateway, and spreads addresses.
        const r = await sftpBatch(front, work, [`put ${name} /lb/${name}`], ['-o', `BindAddress=127.0.0.${20 + n}`], 90_000);
        if (r.code === 0) {
          acked.push(name);
          i++;
          backoff = 100;
        } else {
          // Not acknowledged: the same name and bytes again, after a pause that grows while the service is down.
          failedBatches++;
          await new Promise((resolve) => setTimeout(resolve, backoff));
          backoff = Math.min(backoff * 2, 1_000);
        }
      }
    }

    const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
    const ackedAtLeast = (n: number, timeout: number) =>
      vi.waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(n), { timeout, interval: 100 });
    try {
      await ackedAtLeast(8, 90_000);
      const gw2 = gateways[1]!;
      expect(await gw2.proc.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      const killedAt = acked.length;
      await vi.waitFor(async () => expect((await states()).gw2).toMatch(/^DOWN/), { timeout: 30_000, interval: 200 });
      await ackedAtLeast(killedAt + 8, 90_000);

      await pg.pause();
      if (pg.owned) {
        // While the database is away /healthz is 503 everywhere and HAProxy has no server left.
        await vi.waitFor(async () => expect(Object.values(await states()).every((s) => s.startsWith('DOWN'))).toBe(true), {
          timeout: 30_000,
          interval: 200,
        });
        // The defender fails open: a wrong password is still just refused (scored in gw1's local view), nothing crashes.
        expect(await guess(gateways[0]!.sftpPort)).toBe('refused');
        expect(logLines(gateways[0]!).some((l) => l.event === 'defender_store_failed')).toBe(true);
        expect(await bannerSent(gateways[2]!.sftpPort)).toBe(true);
      }
      await pg.resume();
      await vi.waitFor(async () => expect(await states()).toMatchObject({ gw1: 'UP', gw3: 'UP' }), { timeout: 60_000, interval: 200 });
      const resumedAt = acked.length;
      await ackedAtLeast(resumedAt + 8, 90_000);
    } finally {
      stopping = true;
      await Promise.all(clients);
    }
    console.info(`haproxy: ${acked.length} uploads acknowledged by ${CLIENTS} clients, ${failedBatches} batches failed and were retried`);
    if (pg.owned) {
      await vi.waitFor(() => expect(logLines(gateways[0]!).some((l) => l.event === 'defender_store_recovered')).toBe(true), {
        timeout: 10_000,
      });
    }

    // The killed gateway comes back (as a supervisor would restart it); HAProxy takes it in again.
    gateways[1] = await start(gateways[1]!);
    await vi.waitFor(async () => expect(await states()).toEqual({ gw1: 'UP', gw2: 'UP', gw3: 'UP' }), { timeout: 30_000, interval: 200 });

    const viaFront = await listNames(front, '/lb');
    for (const g of gateways) expect(await listNames(g.target, '/lb'), g.name).toEqual(viaFront);
    for (const name of acked) expect(viaFront, name).toContain(name);
    // Every file listed, acknowledged or not (an upload can commit and lose its answer), is whole: byte-identical.
    const back = path.join(work, 'back');
    await mkdir(back);
    await sftpOk(
      gateways[0]!.target,
      viaFront.map((name) => `get /lb/${name} back/${name}`),
      180_000,
    );
    for (const name of viaFront) {
      const expected = contents.get(name);
      expect(expected, `${name} was never uploaded`).toBeDefined();
      expect((await readFile(path.join(back, name))).equals(expected!), name).toBe(true);
    }
  }, 600_000);
});
