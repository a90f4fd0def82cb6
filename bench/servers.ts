import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { stopChild, waitForStderr, type ProcessRegistry } from './procs.js';

/**
 * The servers under test, all on loopback and all storing on the same
 * filesystem (under the harness's work folder):
 *
 * - capstan: a fresh node directory (`init`, `account add` with the
 *   benchmark's ed25519 key, `run`), embedded default store;
 * - OpenSSH: `sshd -D -e` with its own config and host key, internal-sftp
 *   chrooted to a folder whose upload/ subfolder belongs to the unprivileged
 *   user `nobody`, so the sftp server runs as an ordinary user, as it would
 *   for a real account;
 * - rclone: `rclone serve sftp` over a `crypt` remote whose ciphertext is a
 *   local folder, VFS cache mode `writes` (the gateway an operator would
 *   compare capstan with: it also encrypts every byte and name).
 */

export type ServerName = 'capstan' | 'OpenSSH' | 'rclone';

export interface BenchServer {
  readonly name: ServerName;
  readonly port: number;
  readonly user: string;
  /** Remote folder the benchmark works in; batches `cd` there first. */
  readonly home: string;
  /** Local folder whose recursive size is what the server stored. */
  readonly storeDir: string;
  readonly pid: number;
  /**
   * Called before a timed read of `remote` (a path relative to home): returns
   * once a read of it will come from what the server stored, not from a copy
   * the upload left behind. Only rclone has such a copy (its VFS write cache).
   */
  beforeRead?(remote: string): Promise<void>;
  /** Stops the server by pid (SIGTERM, SIGKILL after a grace period); safe to call twice. */
  stop(): Promise<void>;
}

export interface CapstanOptions {
  registry: ProcessRegistry;
  /** The repository root (dist/cli/main.js is run from there). */
  repo: string;
  /** Folder to create the node directory in. */
  workDir: string;
  publicKeyFile: string;
  port: number;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** [storage] fs.fsync; the default (true) is what capstan ships with. */
  fsync?: boolean;
  /** [storage] checksums; undefined keeps the default init wrote. */
  checksums?: string | undefined;
  /** Keep chunks in this S3 bucket ([storage] backend = s3) instead of the embedded fs store. */
  s3?: CapstanS3;
  /** [events] webhook.url: every change is recorded (intent and event, both synced) and posted here. */
  eventsWebhook?: string;
}

/** A webhook receiver on loopback that confirms every event (204): what --events posts to. */
export interface EventReceiver {
  url: string;
  received(): number;
  close(): Promise<void>;
}

export async function startEventReceiver(): Promise<EventReceiver> {
  let count = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/events`,
    received: () => count,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The [storage] s3.* settings of a gateway whose chunks live in S3 (path-style addressing). */
export interface CapstanS3 {
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const CAPSTAN_USER = 'bench';
const OPENSSH_USER = 'nobody';
export const SSHD = '/usr/sbin/sshd';

/** Why the OpenSSH side cannot run here, or undefined if it can. */
export function openSshUnavailable(): string | undefined {
  try {
    accessSync(SSHD, constants.X_OK);
  } catch {
    return `${SSHD} is not installed`;
  }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'not running as root (sshd with ChrootDirectory needs root)';
  }
  if (uidOf(OPENSSH_USER) === undefined) return `no "${OPENSSH_USER}" user in /etc/passwd`;
  return undefined;
}

function uidOf(user: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === user) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no /etc/passwd: treated as no such user
  }
  return undefined;
}

async function mustRun(registry: ProcessRegistry, cmd: string, args: string[], what: string): Promise<string> {
  const r = await registry.run(cmd, args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${what} failed (${r.signal ?? r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Keeps the last bytes of a child's stderr, for error messages; keeps the pipe drained. */
function stderrTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-8192)));
  return () => tail.trim();
}

/**
 * The last `max` lines of a capstan JSON log (a work folder's capstan.log)
 * at warn or worse, one line each, for the error of a run that failed: the
 * gateway's own account of what went wrong. Empty when there are none.
 */
export async function logTrouble(logFile: string, max = 12): Promise<string> {
  let text: string;
  try {
    text = await readFile(logFile, 'utf8');
  } catch {
    return '';
  }
  const worst = text.split('\n').filter((line) => /"level":(4|5|6)0\b/.test(line));
  return worst
    .slice(-max)
    .map((line) => line.slice(0, 600))
    .join('\n');
}

/** A capstan gateway, with the node directory it runs on (to change its configuration and run it again). */
export interface CapstanServer extends BenchServer {
  readonly nodeDir: string;
}

/** `capstan init` and `account add` in a fresh node directory, then the gateway on it (runCapstan). */
export async function startCapstan(o: CapstanOptions): Promise<CapstanServer> {
  const cli = path.join(o.repo, 'dist/cli/main.js');
  const nodeDir = path.join(o.workDir, 'capstan-node');
  await mustRun(o.registry, process.execPath, [cli, 'init', '-d', nodeDir, '--listen', `127.0.0.1:${o.port}`], 'capstan init');
  // Before `account add`, so that the account's root directory is made against the store the gateway will use.
  if (o.s3) await useS3(nodeDir, o.s3);
  await mustRun(
    o.registry,
    process.execPath,
    [cli, 'account', 'add', CAPSTAN_USER, '--key', o.publicKeyFile, '-d', nodeDir],
    'capstan account add',
  );
  if (o.fsync === false) await setCapstanConfig(nodeDir, { 'fs.fsync': 'false' });
  if (o.eventsWebhook !== undefined) await setCapstanConfig(nodeDir, { 'webhook.url': o.eventsWebhook });
  if (o.checksums !== undefined) await setCapstanConfig(nodeDir, { checksums: o.checksums });
  return runCapstan(o, nodeDir);
}

/** `capstan run` on an existing node directory (made by startCapstan); resolves once it listens. */
export async function runCapstan(o: CapstanOptions, nodeDir: string): Promise<CapstanServer> {
  const cli = path.join(o.repo, 'dist/cli/main.js');
  // AWS_* from the caller's shell would override s3.credentials (capstan prefers the environment).
  const env = {
    ...process.env,
    CAPSTAN_NODE_DIR: undefined,
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
  };
  // stdout is the JSON log: to a file, so a chatty log can never block the gateway on a full pipe.
  const logFd = openSync(path.join(o.workDir, 'capstan.log'), 'a');
  let child: ChildProcess;
  try {
    // The flags `capstan run` gets from its shebang (src/cli/node-flags.ts), as an operator runs it.
    child = o.registry.spawn(process.execPath, [...NODE_FLAGS, ...(o.nodeFlags ?? []), cli, 'run', '-d', nodeDir], {
      stdio: ['ignore', logFd, 'pipe'],
      env,
      cwd: o.workDir,
    });
  } finally {
    closeSync(logFd);
  }
  const tail = stderrTail(child);
  try {
    await waitForStderr(child, /capstan listening on \S+:(\d+)/, 60_000);
  } catch (err) {
    await stopChild(child);
    throw new Error(`capstan run did not start: ${(err as Error).message} ${tail()}`);
  }
  return {
    name: 'capstan',
    port: o.port,
    user: CAPSTAN_USER,
    home: '/',
    storeDir: path.join(nodeDir, 'store'),
    nodeDir,
    pid: child.pid!,
    // A --cpu-prof profile is written while the process exits: give it time.
    stop: () => stopChild(child, 30_000),
  };
}

/** Points the node's [storage] at S3 (before `account add`, so the account's root directory is made in S3). */
async function useS3(nodeDir: string, s3: CapstanS3): Promise<void> {
  const credentials = path.join(nodeDir, 'private', 's3-credentials');
  await writeFile(credentials, `${s3.accessKeyId}\n${s3.secretAccessKey}\n`, { mode: 0o600 });
  await setCapstanConfig(nodeDir, {
    backend: 's3',
    's3.endpoint': s3.endpoint,
    's3.region': s3.region,
    's3.bucket': s3.bucket,
    's3.prefix': s3.prefix,
    's3.addressing': 'path',
    's3.credentials': credentials,
  });
}

/**
 * Sets keys of the node's capstan.cfg: init writes every key with its
 * default, one per line, so each is replaced in place (a key init did not
 * write is an error: the harness and the config schema disagree). Takes
 * effect at the gateway's next start.
 */
export async function setCapstanConfig(nodeDir: string, settings: Record<string, string>): Promise<void> {
  const cfg = path.join(nodeDir, 'capstan.cfg');
  let text = await readFile(cfg, 'utf8');
  for (const [key, value] of Object.entries(settings)) {
    const line = new RegExp(`^${key.replace(/\./g, '\\.')} =.*$`, 'm');
    if (!line.test(text)) throw new Error(`capstan.cfg has no "${key} =" line to set`);
    text = text.replace(line, `${key} = ${value}`);
  }
  await writeFile(cfg, text);
}

export interface OpenSshOptions {
  registry: ProcessRegistry;
  /** Must be root-owned and not group/world-writable all the way up (ChrootDirectory's rule). */
  workDir: string;
  publicKeyFile: string;
  port: number;
}

export async function startOpenSsh(o: OpenSshOptions): Promise<BenchServer> {
  const owner = uidOf(OPENSSH_USER);
  if (!owner) throw new Error(`no ${OPENSSH_USER} user`);
  // sshd's privilege separation directory; Debian creates it at boot, containers often lack it.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = path.join(o.workDir, 'openssh');
  const chroot = path.join(dir, 'chroot');
  const upload = path.join(chroot, 'upload');
  await mkdir(upload, { recursive: true, mode: 0o755 });
  for (const d of [dir, chroot]) await chmod(d, 0o755);
  await chown(upload, owner.uid, owner.gid);
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  await mustRun(o.registry, 'ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey], 'ssh-keygen (sshd host key)');
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${o.port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      'PidFile none',
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      `AuthorizedKeysFile ${o.publicKeyFile}`,
      'Subsystem sftp internal-sftp',
      `Match User ${OPENSSH_USER}`,
      `  ChrootDirectory ${chroot}`,
      '  ForceCommand internal-sftp -d /upload',
      '  AllowTcpForwarding no',
      '  X11Forwarding no',
      '',
    ].join('\n'),
  );
  await mustRun(o.registry, SSHD, ['-t', '-f', config], 'sshd -t (config check)');
  const child = o.registry.spawn(SSHD, ['-f', config, '-D', '-e'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const tail = stderrTail(child);
  try {
    await waitForStderr(child, /Server listening on/, 30_000);
  } catch (err) {
    await stopChild(child);
    throw new Error(`sshd did not start: ${(err as Error).message} ${tail()}`);
  }
  return {
    name: 'OpenSSH',
    port: o.port,
    user: OPENSSH_USER,
    home: '/upload',
    storeDir: upload,
    pid: child.pid!,
    stop: () => stopChild(child, 10_000),
  };
}

export const RCLONE = 'rclone';
const RCLONE_USER = 'bench';
/** The crypt remote's name in the generated rclone.conf; the VFS cache keeps its files under cache/vfs/<name>/. */
const RCLONE_REMOTE = 'secret';
/** How long a get waits for rclone's VFS cache to drop the file just put (the cleaner runs every second). */
const RCLONE_EVICT_TIMEOUT_MS = 60_000;

/** `rclone version`'s first line, or undefined if rclone is not installed. */
export function rcloneVersion(): string | undefined {
  const r = spawnSync(RCLONE, ['version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? (r.stdout.split('\n')[0]?.trim() ?? '') : undefined;
}

/** Why the rclone side cannot run here, or undefined if it can. */
export function rcloneUnavailable(): string | undefined {
  return rcloneVersion() === undefined ? 'rclone is not installed (Debian package rclone)' : undefined;
}

export interface RcloneOptions {
  registry: ProcessRegistry;
  workDir: string;
  publicKeyFile: string;
  port: number;
}

/**
 * `rclone serve sftp` over a crypt remote, configured so that it does what
 * capstan does before it answers, and nothing on the network:
 *
 * - the crypt remote (names and contents encrypted, rclone's defaults) wraps
 *   a local folder, rclone/remote/, the store whose size is measured; its two
 *   passwords are random per run, passed to `rclone obscure` on stdin and
 *   kept in a 0600 rclone.conf given with --config (no RCLONE_* variable of
 *   the caller's shell is passed on);
 * - `--vfs-cache-mode writes`: an upload is written to a plain file in the
 *   VFS cache, then copied through crypt into the remote. With
 *   `--vfs-write-back 0s` that copy happens inside the SFTP close (rclone
 *   uploads synchronously when the write-back delay is zero), so a put has
 *   returned only once its bytes are encrypted in the remote, as capstan's
 *   has once they are sealed in its store; with the default 5 s it would
 *   return with the encryption still to do, and do it during the next
 *   measurement;
 * - `--vfs-cache-max-age 1s --vfs-cache-poll-interval 1s`: the plain copy is
 *   dropped about a second after the upload, and beforeRead waits for that,
 *   so a get decrypts from the remote (a read of a file still in the cache
 *   is served from the plain copy, which no server of the others has);
 * - login with the benchmark's key (--authorized-keys), a host key made for
 *   the run (--key), bound to 127.0.0.1 on a free port. rclone serve makes
 *   no update check or other outside connection; the local and crypt
 *   backends touch only the disk.
 */
export async function startRclone(o: RcloneOptions): Promise<BenchServer> {
  const dir = path.join(o.workDir, 'rclone');
  const remote = path.join(dir, 'remote');
  const cache = path.join(dir, 'cache');
  await mkdir(remote, { recursive: true });
  await mkdir(cache);
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  await mustRun(o.registry, 'ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey], 'ssh-keygen (rclone host key)');
  const obscure = async (): Promise<string> => {
    const r = await o.registry.run(RCLONE, ['obscure', '-'], { input: randomBytes(24).toString('base64url'), timeoutMs: 60_000 });
    // stderr only: rclone echoes nothing of the password there.
    if (r.code !== 0) throw new Error(`rclone obscure failed (${r.signal ?? r.code}): ${r.stderr.trim()}`);
    return r.stdout.trim();
  };
  const config = path.join(dir, 'rclone.conf');
  await writeFile(
    config,
    [
      `[${RCLONE_REMOTE}]`,
      'type = crypt',
      `remote = ${remote}`,
      'filename_encryption = standard',
      'directory_name_encryption = true',
      `password = ${await obscure()}`,
      `password2 = ${await obscure()}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RCLONE_')));
  const child = o.registry.spawn(
    RCLONE,
    [
      'serve',
      'sftp',
      `${RCLONE_REMOTE}:`,
      '--config',
      config,
      '--addr',
      `127.0.0.1:${o.port}`,
      '--key',
      hostKey,
      '--authorized-keys',
      o.publicKeyFile,
      '--user',
      RCLONE_USER,
      '--vfs-cache-mode',
      'writes',
      '--vfs-write-back',
      '0s',
      '--vfs-cache-max-age',
      '1s',
      '--vfs-cache-poll-interval',
      '1s',
      '--cache-dir',
      cache,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env, cwd: dir },
  );
  const tail = stderrTail(child);
  try {
    await waitForStderr(child, /SFTP server listening on/, 30_000);
  } catch (err) {
    await stopChild(child);
    throw new Error(`rclone serve sftp did not start: ${(err as Error).message} ${tail()}`);
  }
  const cached = (remotePath: string): string => path.join(cache, 'vfs', RCLONE_REMOTE, remotePath);
  return {
    name: 'rclone',
    port: o.port,
    user: RCLONE_USER,
    home: '/',
    storeDir: remote,
    pid: child.pid!,
    async beforeRead(remotePath) {
      // Bounded polling of a condition only rclone's cleaner can make true; it has no event to wait for.
      const deadline = Date.now() + RCLONE_EVICT_TIMEOUT_MS;
      while (existsSync(cached(remotePath))) {
        if (Date.now() > deadline) throw new Error(`rclone kept ${remotePath} in its VFS cache for over ${RCLONE_EVICT_TIMEOUT_MS} ms`);
        await delay(100);
      }
    },
    stop: () => stopChild(child, 10_000),
  };
}

/** True if both paths are on the same filesystem (same st_dev). */
export function sameFilesystem(a: string, b: string): boolean {
  return statSync(a).dev === statSync(b).dev;
}

/**
 * Why `dir` cannot be an sshd ChrootDirectory (sshd checks at login that
 * every component, from / down, is root-owned and not group- or
 * world-writable), or undefined if it can.
 */
export function chrootProblem(dir: string): string | undefined {
  let current = path.resolve(dir);
  for (;;) {
    const st = statSync(current);
    if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
      return `${current} is owned by uid ${st.uid} with mode ${(st.mode & 0o7777).toString(8)}; sshd's ChrootDirectory needs every component root-owned and not group/world-writable`;
    }
    const parent = path.dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
}
