import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { encrypt as shaCrypt } from 'unixcrypt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLI, makeTempDir, runCli, startCli, stopAllCli, type CliProcess, cliOk } from '../helpers/cli.js';
import { missing, sftpBatch, skipNotice, type RunResult, type Target } from '../helpers/openssh.js';
import { freshSchema, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { AwsIdentityProvider, CegaUsersServer } from '../helpers/user-directories.js';

/**
 * Central user directories end to end: `capstan run` (the real CLI) asking a
 * CentralEGA-style users endpoint or an AWS-Transfer-style identity provider
 * (test/helpers/user-directories.ts, on loopback), real OpenSSH sftp clients
 * logging in with keys and with passwords (sshpass), homes created on first
 * login, and the faults of the issue: the directory stopped mid-test, a
 * changed key after the TTL, the negative cache, a flood of unknown names.
 */

const unavailable = skipNotice(
  missing('sftp', 'ssh-keygen', 'sshpass') ?? (existsSync(CLI) ? undefined : 'dist/cli/main.js not built (npx tsc)'),
  'user directories',
);

let tmp: { dir: string; cleanup: () => Promise<void> };
let work: string;

interface Gateway {
  node: string;
  proc: CliProcess;
  port: number;
}

/** A node made by `capstan init`, with capstan.cfg keys replaced (init writes every key with its default). */
async function makeNode(name: string, settings: Record<string, string>): Promise<string> {
  const node = path.join(tmp.dir, name);
  await cliOk(node, ['init']);
  const file = path.join(node, 'capstan.cfg');
  let text = await readFile(file, 'utf8');
  for (const [key, value] of Object.entries(settings)) {
    const line = new RegExp(`^${key.replace(/\./g, '\\.')} =.*$`, 'm');
    expect(text, key).toMatch(line);
    text = text.replace(line, `${key} = ${value}`);
  }
  await writeFile(file, text);
  return node;
}

async function startGateway(node: string): Promise<Gateway> {
  const proc = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
  const m = await proc.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) /m, 'stderr', 30_000);
  return { node, proc, port: Number(m[1]) };
}

function keyPair(name: string): { keyFile: string; publicLine: string } {
  const keyFile = path.join(tmp.dir, `id_${name}`);
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', keyFile]);
  if (r.status !== 0) throw new Error(`ssh-keygen: ${r.stderr}`);
  return {
    keyFile,
    publicLine: spawnSync('cat', [`${keyFile}.pub`])
      .stdout.toString()
      .trim(),
  };
}

function sftp(g: Gateway, who: Omit<Target, 'port'>, commands: string[], timeoutMs = 30_000): Promise<RunResult> {
  return sftpBatch({ ...who, port: g.port }, work, commands, [], timeoutMs);
}

async function sftpOk(g: Gateway, who: Omit<Target, 'port'>, commands: string[]): Promise<string> {
  const r = await sftp(g, who, commands);
  if (r.code !== 0) {
    const log = g.proc.stdout
      .split('\n')
      .filter((l) => /"level":(4|5)\d/.test(l))
      .slice(-8);
    throw new Error(`sftp as ${who.user} failed (${r.code}): ${r.stderr}\ngateway log:\n${log.join('\n')}`);
  }
  return r.stdout;
}

async function names(g: Gateway, who: Omit<Target, 'port'>, dir = '/'): Promise<string[]> {
  const out = await sftpOk(g, who, [`ls -1 ${dir}`]);
  return out
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('sftp>'))
    .map((l) => path.posix.basename(l.trim()));
}

/** JSON log lines of a gateway with this event. */
function events(g: Gateway, event: string): Record<string, unknown>[] {
  return g.proc.stdout
    .split('\n')
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.skipIf(unavailable !== undefined)('central user directories through OpenSSH clients', () => {
  beforeAll(async () => {
    tmp = await makeTempDir('capstan-users-');
    work = path.join(tmp.dir, 'work');
    await mkdir(work);
    await writeFile(path.join(work, 'hello.txt'), 'hello\n');
  });

  afterAll(async () => {
    await stopAllCli();
    await tmp?.cleanup();
  });

  describe('LocalEGA (CentralEGA users endpoint, basic auth)', () => {
    const cega = new CegaUsersServer({ user: 'fega', password: 'testing' });
    let g: Gateway;
    let john: { keyFile: string; publicLine: string };
    let jane: { keyFile: string; publicLine: string };

    beforeAll(async () => {
      await cega.start();
      john = keyPair('john');
      jane = keyPair('jane');
      cega.users.set('john', {
        username: 'john',
        uid: 15001,
        passwordHash: null,
        sshPublicKeys: [john.publicLine],
        gecos: 'LocalEGA (test) User',
      });
      cega.users.set('jane', {
        username: 'jane',
        uid: 15002,
        passwordHash: await bcryptHash('jane secret', 10),
        sshPublicKeys: [jane.publicLine],
      });
      cega.users.set('sam', { username: 'sam', uid: 15003, passwordHash: shaCrypt('sam secret', '$6$saltsaltsalt') });
      cega.users.set('old', { username: 'old', uid: 15004, passwordHash: 'plaintext-password' });
      const node = await makeNode('ega', {
        'users.url': `${cega.url}/username/%s`,
        'users.auth': 'basic',
        // Long enough for a login or two on a loaded machine, short enough to wait out.
        'users.cache_ttl': '8',
        'users.negative_ttl': '6',
        'users.max_lookups': '4',
        // Scores and bans would end the flood below before it reaches the directory; this suite measures the lookup bound.
        allow: '127.0.0.1',
        failure_delay: '0',
      });
      await writeFile(path.join(node, 'private/users-credentials'), 'fega:testing\n', { mode: 0o600 });
      // A file account, to see file users unaffected by the directory's faults.
      await cliOk(node, ['account', 'add', 'filey', '--key', `${jane.keyFile}.pub`]);
      g = await startGateway(node);
    }, 60_000);

    afterAll(async () => {
      await g?.proc.stop();
      await cega.stop();
    });

    /** Logs in until a login fetches `name` afresh: from then on its record is cached for the whole TTL. */
    async function freshLogin(name: string, who: Omit<Target, 'port'>): Promise<void> {
      await vi.waitFor(
        async () => {
          const asked = cega.requests.filter((p) => p === `/username/${name}`).length;
          await sftpOk(g, who, ['ls /']);
          expect(cega.requests.filter((p) => p === `/username/${name}`).length).toBeGreaterThan(asked);
        },
        { timeout: 30_000, interval: 200 },
      );
    }

    it('a key login creates the home on first login, and finds it again', async () => {
      await sftpOk(g, { user: 'john', keyFile: john.keyFile }, ['put hello.txt /first.txt']);
      expect(await names(g, { user: 'john', keyFile: john.keyFile })).toEqual(['first.txt']);
      await vi.waitFor(() => expect(events(g, 'home_created').map((e) => e['user'])).toEqual(['john']));
      // The inbox's request: the name in the endpoint, basic auth for the gateway.
      expect(cega.requests).toContain('/username/john');
      expect(await cliOk(g.node, ['account', 'show', 'john'])).toMatch(/^home\s+live since /m);
    });

    it('password logins: bcrypt and sha512-crypt hashes, checked locally; wrong passwords and plaintext hashes refused', async () => {
      await sftpOk(g, { user: 'jane', password: 'jane secret' }, ['put hello.txt /jane.txt']);
      await sftpOk(g, { user: 'sam', password: 'sam secret' }, ['put hello.txt /sam.txt']);
      expect(await names(g, { user: 'sam', password: 'sam secret' })).toEqual(['sam.txt']);
      expect((await sftp(g, { user: 'jane', password: 'wrong' }, ['ls /'])).code).not.toBe(0);
      expect((await sftp(g, { user: 'old', password: 'plaintext-password' }, ['ls /'])).code).not.toBe(0);
      await vi.waitFor(() =>
        expect(events(g, 'directory_hash_refused').map((e) => [e['user'], e['format']])).toContainEqual([
          'old',
          'not a crypt(3) hash (plaintext?)',
        ]),
      );
      expect(g.proc.stdout).not.toContain('plaintext-password');
      expect(g.proc.stdout).not.toContain('jane secret');
      expect(g.proc.stdout).not.toMatch(/\$2b\$10\$/);
      // Each user has a home of their own.
      expect(await names(g, { user: 'jane', keyFile: jane.keyFile })).toEqual(['jane.txt']);
    });

    it('a changed key takes effect after the TTL, not before', { timeout: 60_000 }, async () => {
      const newKey = keyPair('john2');
      await freshLogin('john', { user: 'john', keyFile: john.keyFile });
      cega.users.set('john', { ...cega.users.get('john')!, sshPublicKeys: [newKey.publicLine] });
      expect((await sftp(g, { user: 'john', keyFile: newKey.keyFile }, ['ls /'])).code).not.toBe(0);
      await vi.waitFor(
        async () => {
          expect((await sftp(g, { user: 'john', keyFile: newKey.keyFile }, ['ls /'])).code).toBe(0);
        },
        { timeout: 15_000, interval: 500 },
      );
      expect((await sftp(g, { user: 'john', keyFile: john.keyFile }, ['ls /'])).code).not.toBe(0);
      // Same home as before the key changed.
      expect(await names(g, { user: 'john', keyFile: newKey.keyFile })).toEqual(['first.txt']);
      john = newKey;
    });

    it('the negative cache: an unknown name is asked once per negative TTL; a user added appears after it', async () => {
      cega.resetCounters();
      const ghost = keyPair('ghost');
      const started = Date.now();
      expect((await sftp(g, { user: 'ghost', keyFile: ghost.keyFile }, ['ls /'])).code).not.toBe(0);
      expect((await sftp(g, { user: 'ghost', keyFile: ghost.keyFile }, ['ls /'])).code).not.toBe(0);
      // Two logins (each offering the key and then signing with it) within the negative TTL: one request.
      if (Date.now() - started < 6000) expect(cega.requests.filter((p) => p === '/username/ghost').length).toBe(1);
      cega.users.set('ghost', { username: 'ghost', uid: 15009, sshPublicKeys: [ghost.publicLine] });
      await vi.waitFor(
        async () => {
          expect((await sftp(g, { user: 'ghost', keyFile: ghost.keyFile }, ['ls /'])).code).toBe(0);
        },
        { timeout: 15_000, interval: 500 },
      );
    }, 30_000);

    it('refused names never reach the directory', async () => {
      cega.resetCounters();
      expect((await sftp(g, { user: 'root', password: 'x' }, ['ls /'])).code).not.toBe(0);
      expect((await sftp(g, { user: 'admin', keyFile: john.keyFile }, ['ls /'])).code).not.toBe(0);
      expect(cega.requests).toEqual([]);
    });

    it('faults: garbage, a malformed 200, a key OpenSSH would not take, a 500: refused with a log line saying which', async () => {
      const bad = keyPair('bad');
      cega.users.set('weird', {
        username: 'weird',
        uid: 15010,
        sshPublicKeys: ['ssh-dss AAAAB3NzaC1kc3MAAACBAP1 weird@old', 'command="x" ' + bad.publicLine, 'ssh-ed25519 not-base64!'],
      });
      const weird = await sftp(g, { user: 'weird', keyFile: bad.keyFile }, ['ls /']);
      expect(weird.code).not.toBe(0);
      // The log reaches us through a pipe: wait for the lines rather than race them.
      await vi.waitFor(
        () =>
          expect(
            events(g, 'directory_key_refused')
              .filter((e) => e['user'] === 'weird')
              .map((e) => e['reason']),
            `sftp ${weird.code}: ${weird.stderr}; asked ${cega.requests.filter((p) => p.includes('weird')).length} times`,
          ).toEqual(['key type ssh-dss is not supported', 'authorized_keys options are not supported', 'public key is not base64']),
        { timeout: 10_000 },
      );
      for (const [mode, reason] of [
        ['garbage', 'answer is not JSON'],
        ['malformed', 'malformed answer: not a JSON object'],
        ['error', 'HTTP 500'],
      ] as const) {
        cega.mode = mode;
        const user = `fault-${mode}`;
        expect((await sftp(g, { user, password: 'x' }, ['ls /'])).code).not.toBe(0);
        cega.mode = 'ok';
        // The log is written asynchronously: wait for the line rather than race it.
        await vi.waitFor(
          () => expect(String(events(g, 'directory_unavailable').find((e) => e['user'] === user)?.['reason']), user).toContain(reason),
          { timeout: 5000 },
        );
      }
      // Not scored, not an auth_failed line for fail2ban: the directory failed, not the client.
      await vi.waitFor(() =>
        expect(events(g, 'auth_unavailable').map((e) => e['user'])).toEqual(
          expect.arrayContaining(['fault-garbage', 'fault-malformed', 'fault-error']),
        ),
      );
    });

    it('the directory stopped mid-test: cached users and file users keep logging in, others are refused, the gateway lives on', async () => {
      await freshLogin('jane', { user: 'jane', keyFile: jane.keyFile });
      await cega.stop();
      try {
        await sftpOk(g, { user: 'jane', keyFile: jane.keyFile }, ['ls /']); // cached (TTL 8 s)
        await sftpOk(g, { user: 'filey', keyFile: jane.keyFile }, ['put hello.txt /filey.txt']);
        expect((await sftp(g, { user: 'newcomer', password: 'x' }, ['ls /'])).code).not.toBe(0);
        await vi.waitFor(() =>
          expect(events(g, 'directory_unavailable').find((e) => e['user'] === 'newcomer')?.['reason']).toMatch(/unreachable/),
        );
      } finally {
        await cega.start(); // the same port
      }
      cega.users.set('newcomer', { username: 'newcomer', uid: 15011, passwordHash: await bcryptHash('new pw', 10) });
      await vi.waitFor(
        async () => {
          expect((await sftp(g, { user: 'newcomer', password: 'new pw' }, ['ls /'])).code).toBe(0);
        },
        { timeout: 15_000, interval: 500 },
      );
      expect(g.proc.child.exitCode).toBeNull();
    }, 60_000);

    it('a flood of unknown names stays within the lookup bound (users.max_lookups = 4)', async () => {
      cega.resetCounters();
      cega.delayMs = 400;
      try {
        const flood = Array.from({ length: 20 }, (_, i) =>
          sftp(g, { user: `nobody${i}-${randomBytes(3).toString('hex')}`, password: 'x' }, ['ls /'], 60_000),
        );
        const results = await Promise.all(flood);
        expect(results.every((r) => r.code !== 0)).toBe(true);
      } finally {
        cega.delayMs = 0;
      }
      expect(cega.peak).toBeGreaterThan(0);
      expect(cega.peak).toBeLessThanOrEqual(4);
      // Known users still get in afterwards.
      await sftpOk(g, { user: 'jane', keyFile: jane.keyFile }, ['ls /']);
    }, 90_000);

    it('revoke and export an auto-created home from the command line', async () => {
      const cap = (await cliOk(g.node, ['account', 'export', 'sam'])).trim();
      expect(cap).toMatch(/^CS1:DIR:/);
      expect(await cliOk(g.node, ['account', 'export', '--all'])).toContain(`sam\t${cap}`);
      expect(await cliOk(g.node, ['account', 'show', 'sam'])).not.toContain('CS1:');
      await cliOk(g.node, ['account', 'revoke', 'sam']);
      expect((await sftp(g, { user: 'sam', password: 'sam secret' }, ['ls /'])).code).not.toBe(0);
      await vi.waitFor(() => expect(events(g, 'home_revoked').map((e) => e['user'])).toContain('sam'));
      await cliOk(g.node, ['account', 'revoke', 'sam', '--new-home']);
      expect(await names(g, { user: 'sam', password: 'sam secret' })).toEqual([]);
      expect((await cliOk(g.node, ['account', 'export', 'sam'])).trim()).not.toBe(cap);
      // Quotas are keyed by user name, as for file users.
      await cliOk(g.node, ['account', 'set', 'sam', '--quota', '1']);
      await vi.waitFor(
        async () => {
          expect((await sftp(g, { user: 'sam', password: 'sam secret' }, ['put hello.txt /over.txt'])).code).not.toBe(0);
        },
        { timeout: 10_000, interval: 500 },
      );
    }, 60_000);
  });

  describe('AWS Transfer custom identity provider (API Gateway, SigV4)', () => {
    const idp = new AwsIdentityProvider('s-0123456789abcdef0', {
      accessKeyId: 'AKIDCAPSTANTEST',
      secretAccessKey: 'capstan-test-secret-key',
      region: 'eu-west-1',
    });
    let g: Gateway;
    let kim: { keyFile: string; publicLine: string };

    beforeAll(async () => {
      await idp.start();
      kim = keyPair('kim');
      idp.users.set('kim', { publicKeys: [kim.publicLine], homeDirectory: '/inbox/home/kim' });
      idp.users.set('lee', { passwordHash: await bcryptHash('lee secret', 10), homeDirectory: '/inbox/shared' });
      idp.users.set('max', { passwordHash: shaCrypt('max secret', '$6$saltsaltsalt'), homeDirectory: '/inbox/shared' });
      idp.users.set('ned', {
        passwordHash: await bcryptHash('ned secret', 10),
        homeDirectoryType: 'LOGICAL',
        homeDirectoryDetails: JSON.stringify([{ Entry: '/', Target: '/inbox/home/ned' }]),
      });
      const node = await makeNode('aws', {
        'users.url': idp.invokeUrl,
        'users.format': 'aws-transfer',
        'users.auth': 'aws-sigv4',
        'users.aws.server_id': idp.serverId,
        'users.aws.region': 'eu-west-1',
        failure_delay: '0',
      });
      await writeFile(
        path.join(node, 'private/users-credentials'),
        `${idp.credentials.accessKeyId}\n${idp.credentials.secretAccessKey}\n`,
        {
          mode: 0o600,
        },
      );
      g = await startGateway(node);
    }, 60_000);

    afterAll(async () => {
      await g?.proc.stop();
      await idp.stop();
    });

    it('a key login: PublicKeys from a lookup without a Password header; the home is named by HomeDirectory', async () => {
      await sftpOk(g, { user: 'kim', keyFile: kim.keyFile }, ['put hello.txt /kim.txt']);
      expect(await names(g, { user: 'kim', keyFile: kim.keyFile })).toEqual(['kim.txt']);
      expect(idp.requests).toContain(`/prod/servers/${idp.serverId}/users/kim/config`);
      expect(idp.queries.at(-1)?.get('protocol')).toBe('SFTP');
      expect(idp.queries.at(-1)?.get('sourceIp')).toBe('127.0.0.1');
      expect(await cliOk(g.node, ['account', 'show', '/inbox/home/kim'])).toMatch(/^home\s+live since /m);
    });

    it('password logins checked by the provider (bcrypt and sha512-crypt); users naming the same HomeDirectory share one root', async () => {
      const before = idp.passwordHeaders;
      await sftpOk(g, { user: 'lee', password: 'lee secret' }, ['put hello.txt /from-lee.txt']);
      await sftpOk(g, { user: 'max', password: 'max secret' }, ['put hello.txt /from-max.txt']);
      expect(idp.passwordHeaders).toBeGreaterThan(before);
      expect((await names(g, { user: 'lee', password: 'lee secret' })).sort()).toEqual(['from-lee.txt', 'from-max.txt']);
      expect((await sftp(g, { user: 'max', password: 'lee secret' }, ['ls /'])).code).not.toBe(0);
      expect(g.proc.stdout).not.toContain('lee secret');
    });

    it('LOGICAL with one "/" mapping, and a HomeDirectory that is a capstan directory cap used as the root itself', async () => {
      await sftpOk(g, { user: 'ned', password: 'ned secret' }, ['put hello.txt /ned.txt']);
      expect(await names(g, { user: 'ned', password: 'ned secret' })).toEqual(['ned.txt']);
      const shared = (await cliOk(g.node, ['mkdir'])).trim();
      await cliOk(g.node, ['put', path.join(work, 'hello.txt'), `${shared}/given.txt`]);
      idp.users.set('oli', { passwordHash: await bcryptHash('oli secret', 10), homeDirectory: shared });
      expect(await names(g, { user: 'oli', password: 'oli secret' })).toEqual(['given.txt']);
      expect(events(g, 'home_created').map((e) => e['user'])).not.toContain('oli');
    });

    it('every request carried a valid SigV4 signature (the provider answers 403 otherwise, logged as refusing capstan)', async () => {
      expect(idp.requests.length).toBeGreaterThan(0);
      expect(events(g, 'directory_unavailable')).toEqual([]);
    });
  });

  describe.skipIf(postgresUnavailable() !== undefined)('two gateways sharing PostgreSQL', () => {
    const cega = new CegaUsersServer({ user: 'fega', password: 'testing' });
    let pg: TestPostgres;
    const gateways: Gateway[] = [];
    let pat: { keyFile: string; publicLine: string };

    beforeAll(async () => {
      await cega.start();
      pat = keyPair('pat');
      for (const user of ['pat', 'quinn'])
        cega.users.set(user, { username: user, uid: 16000 + user.length, sshPublicKeys: [pat.publicLine] });
      pg = await startPostgres();
      const dbUrl = new URL(pg.url);
      const password = decodeURIComponent(dbUrl.password);
      dbUrl.password = '';
      const shared = path.join(tmp.dir, 'shared');
      await mkdir(path.join(shared, 'chunks'), { recursive: true });
      const schema = freshSchema('homes');
      const settings = {
        'users.url': `${cega.url}/username/%s`,
        'users.auth': 'basic',
        'users.homes_secret': `${shared}/homes.secret`,
        'fs.dir': `${shared}/chunks`,
        'slots.backend': 'postgres',
        'slots.postgres.url': dbUrl.toString(),
        'slots.postgres.schema': schema,
      };
      const nodes = [await makeNode('pg-a', settings), await makeNode('pg-b', settings)];
      // One homes secret for the system: gateway a's, copied to the shared place both read.
      await writeFile(`${shared}/homes.secret`, await readFile(path.join(nodes[0]!, 'private/homes.secret')), { mode: 0o600 });
      for (const node of nodes) {
        await writeFile(path.join(node, 'private/users-credentials'), 'fega:testing\n', { mode: 0o600 });
        if (password !== '') await writeFile(path.join(node, 'private/postgres-password'), `${password}\n`, { mode: 0o600 });
      }
      gateways.push(...(await Promise.all(nodes.map(startGateway))));
    }, 90_000);

    afterAll(async () => {
      await stopAllCli();
      await pg?.stop();
      await cega.stop();
    });

    it('a home created through one gateway is found through the other', async () => {
      const [a, b] = gateways as [Gateway, Gateway];
      await sftpOk(a, { user: 'pat', keyFile: pat.keyFile }, ['put hello.txt /via-a.txt']);
      expect(await names(b, { user: 'pat', keyFile: pat.keyFile })).toEqual(['via-a.txt']);
      await vi.waitFor(() => expect(events(a, 'home_created').map((e) => e['user'])).toEqual(['pat']));
      expect(events(b, 'home_created')).toEqual([]);
    }, 30_000);

    it('first logins through both gateways at the same moment get one home', async () => {
      const [a, b] = gateways as [Gateway, Gateway];
      await Promise.all([
        sftpOk(a, { user: 'quinn', keyFile: pat.keyFile }, ['put hello.txt /via-a.txt']),
        sftpOk(b, { user: 'quinn', keyFile: pat.keyFile }, ['put hello.txt /via-b.txt']),
      ]);
      expect((await names(a, { user: 'quinn', keyFile: pat.keyFile })).sort()).toEqual(['via-a.txt', 'via-b.txt']);
      // pat's, then exactly one of quinn's.
      await vi.waitFor(() => expect(events(a, 'home_created').length + events(b, 'home_created').length).toBe(2));
    }, 30_000);

    it('a gateway with another homes secret refuses to start', async () => {
      const node = gateways[1]!.node;
      const other = await makeNode('pg-c', {
        'users.url': `${cega.url}/username/%s`,
        'slots.backend': 'postgres',
        'slots.postgres.url': (await readFile(path.join(node, 'capstan.cfg'), 'utf8')).match(/^slots\.postgres\.url = (.*)$/m)![1]!,
        'slots.postgres.schema': (await readFile(path.join(node, 'capstan.cfg'), 'utf8')).match(/^slots\.postgres\.schema = (.*)$/m)![1]!,
      });
      const pgPassword = path.join(node, 'private/postgres-password');
      if (existsSync(pgPassword))
        await writeFile(path.join(other, 'private/postgres-password'), await readFile(pgPassword), { mode: 0o600 });
      const r = await runCli(['-d', other, 'run', '--listen', '127.0.0.1:0'], { timeoutMs: 30_000 });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/homes secret differs/);
    }, 40_000);
  });
});
