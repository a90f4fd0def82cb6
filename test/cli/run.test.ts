import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CAP_IN_TEXT, makeTempDir, oneErrorLine, runCli, startCli, stopAllCli, REPO, type CliProcess, cliOk } from '../helpers/cli.js';
import { bannerSent } from '../helpers/ssh-banner.js';
import { waitFor } from '../helpers/wait.js';
import { filterFromDocs, matchLine } from '../node/fail2ban.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';

let tmp: { dir: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await makeTempDir();
});
afterEach(async () => {
  await stopAllCli();
});
afterAll(async () => {
  await tmp.cleanup();
});

async function setConfig(node: string, edit: (text: string) => string): Promise<void> {
  const file = path.join(node, 'capstan.cfg');
  await writeFile(file, edit(await readFile(file, 'utf8')));
}

function hasBinaries(...names: string[]): boolean {
  return names.every((n) => spawnSync('sh', ['-c', `command -v ${n}`], { stdio: 'ignore' }).status === 0);
}

/** A real SSH client: does a password login succeed? */
function tryPasswordLogin(port: number, username: string, password: string, localAddress?: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    const timer = setTimeout(() => {
      client.end();
      reject(new Error('login attempt timed out'));
    }, 15_000);
    client
      .on('ready', () => {
        clearTimeout(timer);
        client.end();
        resolve(true);
      })
      .on('error', (err: Error & { level?: string }) => {
        clearTimeout(timer);
        if (err.level === 'client-authentication') resolve(false);
        else reject(err);
      })
      .connect({
        host: '127.0.0.1',
        port,
        username,
        password,
        tryKeyboard: false,
        hostVerifier: () => true,
        readyTimeout: 15_000,
        ...(localAddress !== undefined ? { localAddress } : {}),
      });
  });
}

async function startRun(node: string, extra: string[] = []): Promise<{ proc: CliProcess; port: number }> {
  const proc = startCli(['run', '-d', node, '--listen', '127.0.0.1:0', ...extra]);
  const m = await proc.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) \(ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\)$/m);
  return { proc, port: Number(m[1]) };
}

describe('capstan run', () => {
  it('listens, serves CLI commands through its socket, health and metrics, and stops on SIGTERM', async () => {
    const node = path.join(tmp.dir, 'node');
    await cliOk(node, ['init']);
    await setConfig(node, (t) => t.replace(/^listen =$/m, 'listen = 127.0.0.1:0'));
    const { proc, port } = await startRun(node);
    const httpLine = await proc.waitFor(/^capstan http on 127\.0\.0\.1:(\d+) \(\/healthz, \/metrics\)$/m);
    const http = `http://127.0.0.1:${httpLine[1]}`;
    expect((await stat(path.join(node, 'private/slots.sock'))).mode & 0o777).toBe(0o600);

    // CLI commands on the same node while it runs: chunks shared, slots through the socket.
    const root = (await cliOk(node, ['mkdir'])).trim();
    await cliOk(node, ['put', '-', `${root}/notes.txt`], 'written while the gateway runs\n'.repeat(10));
    expect(await cliOk(node, ['ls', root])).toBe('notes.txt\n');
    expect(await cliOk(node, ['get', `${root}/notes.txt`])).toBe('written while the gateway runs\n'.repeat(10));
    expect(await cliOk(node, ['check', '--verify', root])).toMatch(/all well/);
    const status = await cliOk(node, ['status']);
    expect(status).toMatch(/^gateway\s+running/m);
    expect(status).toMatch(/^slot store\s+leveldb store\/slots: 1 directories, 0 homes$/m);
    expect(status).not.toMatch(CAP_IN_TEXT);

    // An account added while running is picked up without a restart.
    await cliOk(node, ['account', 'add', 'carol', '--password-stdin', '--root', root], 's3cret-pw');
    await waitFor(() => tryPasswordLogin(port, 'carol', 's3cret-pw'), { timeoutMs: 10_000, intervalMs: 250 });
    expect(await tryPasswordLogin(port, 'carol', 'wrong')).toBe(false);

    // The auth_failed line the gateway really wrote is what the documented fail2ban filter bans.
    const filter = await filterFromDocs(REPO);
    const failed = await proc.waitFor(/^.*"event":"auth_failed".*$/m, 'stdout');
    expect(matchLine(filter, failed[0])).toBe('127.0.0.1');
    expect(proc.stdout).not.toContain('s3cret-pw');
    expect(proc.stdout).not.toMatch(CAP_IN_TEXT);

    const health = await fetch(`${http}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/^capstan_up 1$/m);
    expect(metrics).toMatch(/^capstan_logins_total\{result="ok"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^capstan_logins_total\{result="failed"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^capstan_chunk_store_operation_seconds_count\{op="get"\} \d+$/m);
    // The process's own figures (test/node/process-metrics.test.ts checks their values), each family declared once.
    expect(metrics).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
    expect(metrics).toMatch(/^nodejs_heap_size_used_bytes [1-9]\d*$/m);
    expect(metrics).toMatch(/^nodejs_eventloop_lag_p99_seconds [\d.e-]+$/m);
    expect(metrics).toMatch(/^nodejs_gc_duration_seconds_count\{kind="minor"\} \d+$/m);
    const families = metrics.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(families).size).toBe(families.length);

    // Every stdout line is JSON.
    for (const line of proc.stdout.trim().split('\n')) expect(() => JSON.parse(line), line).not.toThrow();

    const exit = await proc.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(proc.stdout).toMatch(/"event":"shutdown"/);
    expect(proc.stdout).toMatch(/"event":"stopped"/);
    await expect(stat(path.join(node, 'private/slots.sock'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fetch(`${http}/healthz`)).rejects.toThrow();

    // Back to direct access once it is gone.
    expect(await cliOk(node, ['status'])).toMatch(/^gateway\s+not running$/m);
    expect(await cliOk(node, ['ls', root])).toBe('notes.txt\n');
    // A dozen commands and a gateway; under load each process start takes seconds.
  }, 180_000);

  it('a ban survives a restart: scores and bans are kept in store/defender', async () => {
    const node = path.join(tmp.dir, 'node-bans');
    await cliOk(node, ['init']);
    await setConfig(node, (t) => t.replace(/^threshold = 15$/m, 'threshold = 2').replace(/^failure_delay = 1000$/m, 'failure_delay = 0'));
    await cliOk(node, ['account', 'add', 'dave', '--password-stdin'], 'right-pw\n');
    const first = await startRun(node);
    // One wrong password from 127.0.0.5, then a restart: the score is kept too.
    expect(await tryPasswordLogin(first.port, 'dave', 'wrong', '127.0.0.5')).toBe(false);
    expect(await first.proc.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const second = await startRun(node);
    expect(await tryPasswordLogin(second.port, 'dave', 'wrong', '127.0.0.5')).toBe(false);
    await second.proc.waitFor(/"event":"ban","remoteAddress":"127\.0\.0\.5"/, 'stdout'); // the log line comes through a pipe
    expect(await bannerSent(second.port, '127.0.0.1', '127.0.0.5')).toBe(false);
    expect(await second.proc.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    // Restarted again: still refused before the banner, while other clients are served.
    const third = await startRun(node);
    expect(await bannerSent(third.port, '127.0.0.1', '127.0.0.5')).toBe(false);
    expect(await tryPasswordLogin(third.port, 'dave', 'right-pw')).toBe(true);
    expect((await stat(path.join(node, 'store/defender'))).isDirectory()).toBe(true);
    // The operator lifts it: not while the gateway holds the database, then with the CLI.
    const held = await runCli(['-d', node, 'ban', 'list']);
    expect(held.code).not.toBe(0);
    expect(oneErrorLine(held)).toMatch(/held by the running gateway: stop it first/);
    expect(await third.proc.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await cliOk(node, ['ban', 'list'])).toMatch(/^127\.0\.0\.5\t\d{4}-\d\d-\d\dT[\d:.]+Z\t1\n$/);
    expect(await cliOk(node, ['ban', 'remove', '127.0.0.5'])).toBe('unbanned 127.0.0.5\n');
    expect(await cliOk(node, ['ban', 'list'])).toBe('');
    const fourth = await startRun(node);
    expect(await bannerSent(fourth.port, '127.0.0.1', '127.0.0.5')).toBe(true);
  }, 90_000);

  it('stops cleanly on SIGINT too, and refuses a second gateway on the same node', async () => {
    const node = path.join(tmp.dir, 'twice');
    await cliOk(node, ['init']);
    const { proc } = await startRun(node);
    const second = await runCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n').pop()).toMatch(/^capstan: .*(held by another process|already)/);
    expect(await proc.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('a SIGTERM while it starts is caught: the gateway stops cleanly once it is up, and the node opens again', async () => {
    const node = path.join(tmp.dir, 'early-signal');
    await cliOk(node, ['init']);
    const proc = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    // The first log line: written after the handlers are installed and before the gateway opens anything.
    await proc.waitFor(/"event":"start"/, 'stdout');
    expect(await proc.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const events = proc.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { event?: string }).event);
    expect(events).toContain('shutdown');
    expect(events.at(-1)).toBe('stopped');
    // Stopped cleanly: the node lock is free for the next gateway.
    const { proc: again } = await startRun(node);
    expect(await again.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  });

  it('a bad config key stops it with one line naming the key', async () => {
    const node = path.join(tmp.dir, 'badcfg');
    await cliOk(node, ['init']);
    await setConfig(node, (t) => t.replace(/^idle_timeout = 900$/m, 'idle_timeout = 900\nidle_timeot = 5'));
    const lineNo = (await readFile(path.join(node, 'capstan.cfg'), 'utf8')).split('\n').indexOf('idle_timeot = 5') + 1;
    const r = await runCli(['run', '-d', node]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r)).toBe(`capstan: capstan.cfg line ${lineNo}: [sftpd] idle_timeot: unknown key`);
    expect(r.stdout).toBe('');

    await setConfig(node, (t) => t.replace('idle_timeot = 5', '').replace(/^listen =$/m, 'listen = 10.0.0.1:80'));
    const r2 = await runCli(['run', '-d', node]);
    expect(r2.code).toBe(1);
    expect(oneErrorLine(r2)).toMatch(/\[http\] listen: expected a loopback address/);
  });

  it('a listen address already in use is one clear line', async () => {
    const node = path.join(tmp.dir, 'busyport');
    await cliOk(node, ['init']);
    const first = await startRun(node);
    const other = path.join(tmp.dir, 'busyport2');
    await cliOk(other, ['init']);
    const r = await runCli(['run', '-d', other, '--listen', `127.0.0.1:${first.port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^capstan: .*EADDRINUSE/);
    await first.proc.stop();
  });
});

describe('capstan demo', () => {
  it('creates ~/.capstan and a password account, prints the commands, and reuses both next time', async () => {
    const cwd = path.join(tmp.dir, 'demo');
    const home = path.join(tmp.dir, 'home'); // no ~/.ssh keys: a password account
    await mkdir(cwd);
    await mkdir(home);
    const env = { HOME: home, USER: 'tester' };

    const first = startCli(['demo', '--listen', '127.0.0.1:0'], { cwd, env });
    const pw = await first.waitFor(/^added account tester with password (\S+) \(shown once/m);
    const cmd = await first.waitFor(/^ {2}sftp -P (\d+) tester@127\.0\.0\.1$/m);
    await first.waitFor(/^ {2}mkdir -p ~\/capstan && sshfs -o reconnect,ServerAliveInterval=15 -p \d+ tester@127\.0\.0\.1:\/ ~\/capstan$/m);
    // A password account is told how to give sshfs its password without a prompt.
    await first.waitFor(
      /^ {2}\(sshfs asks for the password; in a script: echo '(\S+)' \| sshfs -o password_stdin,reconnect,ServerAliveInterval=15 -p \d+ tester@/m,
    );
    expect(first.stderr).toMatch(new RegExp(`^created a capstan node in ${home}/\\.capstan$`, 'm'));
    expect(await tryPasswordLogin(Number(cmd[1]), 'tester', pw[1]!)).toBe(true);
    // The CLI finds the node with no -d (the same default), while the gateway runs.
    const status = await runCli(['status'], { env: { HOME: home } });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`${home}/.capstan`);
    expect(await first.stop()).toEqual({ code: 0, signal: null });
    expect(await readFile(path.join(home, '.capstan/private/accounts'), 'utf8')).not.toContain(pw[1]!);

    const second = startCli(['demo', '--listen', '127.0.0.1:0'], { cwd, env });
    const cmd2 = await second.waitFor(/^ {2}sftp -P (\d+) tester@127\.0\.0\.1$/m);
    expect(second.stderr).toMatch(/^using the capstan node in /m);
    expect(second.stderr).toMatch(/^account tester exists/m);
    expect(second.stderr).not.toMatch(/with password/);
    expect(await tryPasswordLogin(Number(cmd2[1]), 'tester', pw[1]!)).toBe(true);
    expect(await second.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it.skipIf(!hasBinaries('sftp', 'sshpass'))('the sftp command it prints works (OpenSSH sftp, via sshpass)', async () => {
    const cwd = path.join(tmp.dir, 'demo-sftp');
    const home = path.join(tmp.dir, 'home-sftp');
    await mkdir(cwd);
    await mkdir(home);
    const proc = startCli(['demo', '--listen', '127.0.0.1:0'], { cwd, env: { HOME: home, USER: 'sftpuser' } });
    const pw = (await proc.waitFor(/^added account sftpuser with password (\S+) /m))[1]!;
    const printed = (await proc.waitFor(/^ {2}(sftp -P \d+ sftpuser@127\.0\.0\.1)$/m))[1]!.split(' ');
    await writeFile(path.join(tmp.dir, 'up.txt'), 'uploaded with OpenSSH sftp\n');
    // The printed command, plus what a script needs: no host key prompt, batch mode that still allows a password.
    const [cmd, ...args] = printed;
    const r = spawnSync(
      'sshpass',
      [
        '-e',
        cmd!,
        '-o',
        'BatchMode=no',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-F',
        '/dev/null',
        '-b',
        '-',
        ...args,
      ],
      {
        input: `put ${path.join(tmp.dir, 'up.txt')} /up.txt\nls\n`,
        env: { ...process.env, SSHPASS: pw, HOME: home },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('up.txt');
    // What SFTP wrote, the CLI reads, while the gateway runs.
    const node = path.join(home, '.capstan');
    const rootLine = (await cliOk(node, ['account', 'list', '--show-caps'])).split('\n').find((l) => l.startsWith('sftpuser\troot\t'))!;
    const root = rootLine.split('\t')[2]!;
    expect(await cliOk(node, ['get', `${root}/up.txt`])).toBe('uploaded with OpenSSH sftp\n');
    expect(await proc.stop()).toEqual({ code: 0, signal: null });
  });

  it('run as root, names the account `capstan` (root is refused by default), which logs in; the refusal of root is logged with its reason', async () => {
    const cwd = path.join(tmp.dir, 'demo-root');
    const home = path.join(tmp.dir, 'home-root');
    await mkdir(cwd);
    await mkdir(home);
    const proc = startCli(['demo', '--listen', '127.0.0.1:0'], { cwd, env: { HOME: home, USER: 'root' } });
    const pw = (await proc.waitFor(/^added account capstan with password (\S+) /m))[1]!;
    const port = Number((await proc.waitFor(/^ {2}sftp -P (\d+) capstan@127\.0\.0\.1$/m))[1]);
    expect(await tryPasswordLogin(port, 'capstan', pw)).toBe(true);
    expect(await tryPasswordLogin(port, 'root', pw)).toBe(false);
    await proc.waitFor(/"event":"auth_failed".*"user":"root".*"reason":"refused name"/, 'stdout');
    expect(await tryPasswordLogin(port, 'capstan', 'not the password')).toBe(false);
    await proc.waitFor(/"event":"auth_failed".*"user":"capstan".*"reason":"wrong password"/, 'stdout');
    expect(await tryPasswordLogin(port, 'nobody-here', pw)).toBe(false);
    await proc.waitFor(/"event":"auth_failed".*"user":"nobody-here".*"reason":"unknown user"/, 'stdout');
    expect(proc.stdout).not.toContain(pw);
    expect(await proc.stop()).toEqual({ code: 0, signal: null });
    // And `account add` of a refused name says why, in one line, and adds nothing.
    const node = path.join(home, '.capstan');
    const refused = await runCli(['-d', node, 'account', 'add', 'Root', '--password-stdin'], { input: 'x' });
    expect(refused.code).not.toBe(0);
    expect(oneErrorLine(refused)).toMatch(/^capstan: Root is in \[defender\] refused_users/);
    expect(await readFile(path.join(node, 'private/accounts'), 'utf8')).not.toMatch(/^Root /m);
  });

  it.skipIf(!hasBinaries('script'))('on a terminal, logs short text lines, not JSON (under a real pty)', async () => {
    const home = path.join(tmp.dir, 'home-tty');
    await mkdir(home);
    // `script` runs the CLI on a pseudo-terminal and copies what it prints to our pipe.
    const cli = path.join(REPO, 'dist/cli/main.js');
    const child = spawn('script', ['-qfec', `${process.execPath} ${cli} demo --listen 127.0.0.1:0`, '/dev/null'], {
      env: { ...process.env, HOME: home, USER: 'ttyuser', CAPSTAN_NODE_DIR: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let seen = '';
    child.stdout.on('data', (d: Buffer) => (seen += d.toString('utf8')));
    try {
      // The demo prints its connection hint after the gateway's listening line: wait for both.
      await vi.waitFor(
        () => {
          expect(seen).toMatch(/\d\d:\d\d:\d\d INFO {2}SFTP gateway listening .*port=\d+/);
          expect(seen).toMatch(/^ {2}sftp -P \d+ ttyuser@127\.0\.0\.1\r?$/m);
        },
        { timeout: 30_000, interval: 100 },
      );
      expect(seen).not.toContain('{"level"');
    } finally {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await new Promise((resolve) => child.once('close', resolve));
    }
  });

  it('uses ~/.ssh/id_ed25519.pub when there is one', async () => {
    const cwd = path.join(tmp.dir, 'demo-key');
    const home = path.join(tmp.dir, 'home-key');
    await mkdir(path.join(home, '.ssh'), { recursive: true });
    await mkdir(cwd);
    const pair = generateSshKeyPair('ed25519', { comment: 'me@here' });
    await writeFile(path.join(home, '.ssh/id_ed25519.pub'), `${pair.public}\n`);
    const proc = startCli(['demo', '--listen', '127.0.0.1:0'], { cwd, env: { HOME: home, USER: 'keyuser' } });
    await proc.waitFor(/^added account keyuser, logging in with your key .*id_ed25519\.pub$/m);
    await proc.waitFor(/^ {2}sftp -P \d+ keyuser@127\.0\.0\.1$/m);
    // The last start line (a SIGTERM before it is caught too: startLogged installs the handlers first).
    await proc.waitFor(/^stop with Ctrl-C$/m);
    expect(proc.stderr).not.toMatch(/password/);
    expect(await proc.stop()).toEqual({ code: 0, signal: null });
  });
});
