import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Real OpenSSH clients (sftp, scp, ssh) and sshfs, driven against a gateway
 * in tests. Every process started here is killed by the helper that
 * started it (timeout, or the unmount in a finally); nothing is left behind.
 * Tests skip, never pass, when a binary is missing: use `missing(...)`.
 */

/** True if `name` is on PATH. */
export function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** The first of `names` not on PATH, as a skip reason; undefined if all are there. */
export function missing(...names: string[]): string | undefined {
  const absent = names.filter((n) => !hasBinary(n));
  return absent.length > 0 ? `not installed: ${absent.join(', ')}` : undefined;
}

/**
 * Prints why a suite is skipped (vitest's skipIf shows no reason); returns
 * the reason for skipIf. Every reason passed here is a missing peer (a
 * binary, a server, FUSE), so under CI=true it is a failure, not a skip: the
 * test file fails to load with the reason.
 */
export function skipNotice(reason: string | undefined, suite: string): string | undefined {
  if (reason === undefined) return undefined;
  if (process.env['CI'] === 'true') throw new Error(`${suite}: ${reason} (CI=true: a missing peer fails the suite)`);
  console.warn(`SKIPPED ${suite}: ${reason}`);
  return reason;
}

/**
 * Like skipNotice(missing(...names)), except under CI=true, where a missing
 * peer is a failure, not a skip: the suite then runs, and requirePeers in
 * its beforeAll fails it. Returns the skip reason for describe.skipIf.
 */
export function peersOrSkip(suite: string, ...names: string[]): string | undefined {
  const reason = missing(...names);
  return process.env['CI'] === 'true' ? undefined : skipNotice(reason, suite);
}

/** Throws unless every binary is on PATH (for a suite that peersOrSkip did not skip). */
export function requirePeers(...names: string[]): void {
  const reason = missing(...names);
  if (reason !== undefined) throw new Error(`${reason} (CI=true: a missing peer fails the suite)`);
}

/** FUSE needs the device and a fusermount; containers often lack /dev/fuse. */
export function fuseUnavailable(): string | undefined {
  const bins = missing('sshfs');
  if (bins) return bins;
  if (!hasBinary('fusermount3') && !hasBinary('fusermount')) return 'not installed: fusermount3/fusermount';
  if (spawnSync('sh', ['-c', 'test -c /dev/fuse && test -r /dev/fuse && test -w /dev/fuse']).status !== 0) return '/dev/fuse not usable';
  return undefined;
}

export interface Target {
  port: number;
  user: string;
  /** Private key file (0600); omit for password logins. */
  keyFile?: string;
  /** With sshpass, for password logins. */
  password?: string;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const SSH_OPTIONS = [
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'GlobalKnownHostsFile=/dev/null',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'ConnectTimeout=20',
  '-F',
  '/dev/null',
];

function authOptions(t: Target): string[] {
  if (t.keyFile !== undefined) {
    return ['-i', t.keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'PreferredAuthentications=publickey'];
  }
  return ['-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1'];
}

/** Runs a command to completion (killed after timeoutMs), collecting output. */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number | undefined; cwd?: string | undefined; env?: NodeJS.ProcessEnv | undefined; input?: string | undefined } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env, SSH_AUTH_SOCK: '' },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}); // a child that exits without reading its input is not our failure
      child.stdin!.end(opts.input);
    }
  });
}

/** Wraps a command in sshpass for password logins. */
function withPassword(t: Target, cmd: string, args: string[]): [string, string[], NodeJS.ProcessEnv] {
  if (t.keyFile !== undefined || t.password === undefined) return [cmd, args, {}];
  return ['sshpass', ['-e', cmd, ...args], { SSHPASS: t.password }];
}

/** `sftp -b batch` against the gateway; commands as sftp's batch syntax (a leading '-' ignores a failure). */
export async function sftpBatch(
  t: Target,
  workDir: string,
  commands: string[],
  extraArgs: string[] = [],
  timeoutMs?: number,
): Promise<RunResult> {
  const batch = join(workDir, `batch-${process.hrtime.bigint()}.txt`);
  await writeFile(batch, commands.join('\n') + '\n');
  // sftp -b adds "-oBatchMode=yes" for ssh, which forbids password prompts; ssh takes the first value
  // of an option, so a password login states BatchMode=no before -b.
  const batchMode = t.keyFile === undefined ? ['-o', 'BatchMode=no'] : [];
  const [cmd, args, env] = withPassword(t, 'sftp', [
    ...batchMode,
    '-b',
    batch,
    ...SSH_OPTIONS,
    ...authOptions(t),
    ...extraArgs,
    '-P',
    String(t.port),
    `${t.user}@127.0.0.1`,
  ]);
  return run(cmd, args, { cwd: workDir, env, timeoutMs });
}

/** sftpBatch that MUST succeed: its stdout; otherwise an error with sftp's output. */
export async function sftpOk(t: Target, workDir: string, commands: string[]): Promise<string> {
  const r = await sftpBatch(t, workDir, commands);
  if (r.code !== 0) throw new Error(`sftp failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `scp` (SFTP protocol by default; pass '-O' for the legacy protocol). */
export function scp(t: Target, args: string[], timeoutMs?: number): Promise<RunResult> {
  const [cmd, all, env] = withPassword(t, 'scp', [...SSH_OPTIONS, ...authOptions(t), '-P', String(t.port), ...args]);
  return run(cmd, all, { env, timeoutMs });
}

export function remote(t: Target, path: string): string {
  return `${t.user}@127.0.0.1:${path}`;
}

/** `ssh user@host command...` */
export function ssh(t: Target, command: string[], extraArgs: string[] = []): Promise<RunResult> {
  const [cmd, args, env] = withPassword(t, 'ssh', [
    ...SSH_OPTIONS,
    ...authOptions(t),
    ...extraArgs,
    '-p',
    String(t.port),
    `${t.user}@127.0.0.1`,
    ...command,
  ]);
  return run(cmd, args, { env, timeoutMs: 30_000 });
}

export interface SshfsMount {
  readonly mountpoint: string;
  readonly pid: number | undefined;
  /** Unmounts (lazily if busy) and stops the sshfs process; never throws, safe in finally blocks. */
  unmount(): Promise<void>;
}

function isMounted(mountpoint: string): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((line) => line.split(' ')[4] === mountpoint);
  } catch {
    return false;
  }
}

/**
 * Mounts the gateway's `/` with sshfs run in the foreground (-f) as our
 * child, so the test owns its pid: unmount() runs fusermount -u and then
 * makes sure that process is gone.
 */
export async function mountSshfs(t: Target, mountpoint: string, extraOptions: string[] = []): Promise<SshfsMount> {
  if (t.keyFile === undefined && t.password === undefined) throw new Error('sshfs helper needs a key or a password');
  // A password goes in on stdin (-o password_stdin), as the quick start tells users: sshpass cannot drive sshfs.
  const auth =
    t.keyFile !== undefined
      ? [`IdentityFile=${t.keyFile}`, 'IdentitiesOnly=yes', 'BatchMode=yes']
      : ['password_stdin', 'PreferredAuthentications=password', 'PubkeyAuthentication=no'];
  const options = [
    ...auth,
    'StrictHostKeyChecking=no',
    'UserKnownHostsFile=/dev/null',
    'LogLevel=ERROR',
    `port=${t.port}`,
    ...extraOptions,
  ];
  const child = spawn('sshfs', ['-f', '-o', options.join(','), `${t.user}@127.0.0.1:/`, mountpoint], {
    stdio: [t.keyFile === undefined ? 'pipe' : 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, SSH_AUTH_SOCK: '' },
  });
  if (t.keyFile === undefined) child.stdin!.end(`${t.password}\n`);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tool = hasBinary('fusermount3') ? 'fusermount3' : 'fusermount';
  const mount: SshfsMount = {
    mountpoint,
    pid: child.pid,
    async unmount() {
      if (isMounted(mountpoint)) {
        const first = await run(tool, ['-u', mountpoint], { timeoutMs: 20_000 }).catch(() => undefined);
        if (first?.code !== 0) await run(tool, ['-u', '-z', mountpoint], { timeoutMs: 20_000 }).catch(() => undefined);
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + 20_000;
  while (!isMounted(mountpoint)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await mount.unmount();
      throw new Error(`sshfs did not mount: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return mount;
}
