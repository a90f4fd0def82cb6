import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { AccountsFile, createAuthenticator, formatKeyLine, formatPasswordLine, hashPassword, withOptions } from '../../src/auth/index.js';
import type { Authenticator } from '../../src/auth/index.js';
import type { DirectoryWriteCap } from '../../src/cap/index.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { QuotaGuard, UsageBook } from '../../src/quota/index.js';
import { FsChunkStore, MemoryChunkStore, MemorySlotStore } from '../../src/store/index.js';
import type { ChunkStore } from '../../src/store/index.js';
import { startSftpServer, type SftpServer, type SftpServerOptions } from '../../src/sftp/index.js';
import { type ChecksumAlgorithm, createTree, type Tree } from '../../src/tree/index.js';
import { hasBinary, type Target } from '../helpers/openssh.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';
import type { MemoryBudget } from '../../src/util/memory-budget.js';

/**
 * A gateway in this process on an ephemeral port, over memory stores (or an
 * FsChunkStore in a temp dir for big files), with an accounts file holding:
 * - `alice`: an ed25519 key (made by ssh-keygen when present) and a
 *   password, root = a fresh writable directory;
 * - `reader`: the same key, root = the read cap of alice's root;
 * - `backup`: the same key, root = alice's root, with the `append-only`
 *   option (src/sftp/append-only.ts);
 * - `nosnap`: the same key, root = alice's root, with the `no-snapshots`
 *   option (no /.snapshots/ folder).
 * Logs are captured as parsed JSON lines.
 */
export interface Gateway {
  server: SftpServer;
  port: number;
  tree: Tree;
  root: DirectoryWriteCap;
  dir: string;
  keyFile: string;
  publicKeyLine: string;
  password: string;
  alice: Target;
  alicePassword: Target;
  reader: Target;
  backup: Target;
  nosnap: Target;
  logs: Record<string, unknown>[];
  authenticator: Authenticator;
  close(): Promise<void>;
}

export interface GatewayOptions {
  chunkSize?: number | undefined;
  /** TreeOptions.checksums: the digests new manifests record. */
  checksums?: readonly ChecksumAlgorithm[] | undefined;
  readOnly?: boolean | undefined;
  fsChunks?: boolean | undefined;
  idleTimeoutMs?: number | undefined;
  /** The gateway-wide memory budget, given to the Tree and to the SFTP server as capstan run does. */
  memory?: MemoryBudget | undefined;
  /** Wraps the chunk store (fault injection: failing or slow puts). */
  wrapChunks?: ((store: ChunkStore) => ChunkStore) | undefined;
  /** More accounts file lines, of alice's root. */
  accounts?: ((root: DirectoryWriteCap) => string[]) | undefined;
  /** Accept RSA signatures over SHA-1 ([sftpd] rsa_sha1). */
  allowRsaSha1?: boolean | undefined;
  /** More server options (limits, defender, quota), or a function of the tree that makes them. */
  server?:
    | Partial<SftpServerOptions>
    | ((tree: Tree, dir: string) => Partial<SftpServerOptions> | Promise<Partial<SftpServerOptions>>)
    | undefined;
}

const { utils } = ssh2;

export async function makeUserKey(dir: string, name = 'id_ed25519'): Promise<{ keyFile: string; publicLine: string }> {
  const keyFile = join(dir, name);
  if (hasBinary('ssh-keygen')) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test@capstan', '-f', keyFile]);
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  } else {
    const pair = generateSshKeyPair('ed25519', { comment: 'test@capstan' });
    await writeFile(keyFile, pair.private, { mode: 0o600 });
    await writeFile(`${keyFile}.pub`, pair.public + '\n');
  }
  await chmod(keyFile, 0o600);
  return { keyFile, publicLine: (await readFile(`${keyFile}.pub`, 'utf8')).trim() };
}

export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const dir = await mkdtemp(join(tmpdir(), 'capstan-sftp-'));
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('debug', { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const base: ChunkStore = opts.fsChunks ? await FsChunkStore.open(join(dir, 'store'), { fsync: false }) : new MemoryChunkStore();
  const chunks = opts.wrapChunks ? opts.wrapChunks(base) : base;
  const tree = createTree({
    chunks,
    slots: new MemorySlotStore(),
    chunkSize: opts.chunkSize,
    checksums: opts.checksums,
    memory: opts.memory,
  });
  const root = await tree.createDirectory();
  const { keyFile, publicLine } = await makeUserKey(dir);
  const password = 'correct horse battery staple';
  const hash = await hashPassword(password, { ln: 10, r: 8, p: 1 });
  const accountsPath = join(dir, 'accounts');
  await writeFile(
    accountsPath,
    [
      formatKeyLine('alice', publicLine, root.toString()),
      formatPasswordLine('alice', hash, root.toString()),
      formatKeyLine('reader', publicLine, root.readonly().toString()),
      withOptions(formatKeyLine('backup', publicLine, root.toString()), { appendOnly: true, noSnapshots: false }),
      withOptions(formatKeyLine('nosnap', publicLine, root.toString()), { appendOnly: false, noSnapshots: true }),
      ...(opts.accounts?.(root) ?? []),
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  const accountsFile = await AccountsFile.open(accountsPath, { logger });
  const authenticator = createAuthenticator({ accountsFile, logger, ...(opts.allowRsaSha1 === true ? { allowRsaSha1: true } : {}) });
  const hostKey = generateSshKeyPair('ed25519').private;
  const convergence = new Uint8Array(32).fill(7);
  const server = await startSftpServer({
    tree,
    authenticator,
    hostKeys: [hostKey],
    port: 0,
    convergenceFor: () => convergence,
    spoolDir: join(dir, 'spool'),
    logger,
    readOnly: opts.readOnly,
    idleTimeoutMs: opts.idleTimeoutMs,
    memory: opts.memory,
    // As capstan run wires it: a name the accounts file lacks is an unknown user.
    isKnownUser: (user) => accountsFile.get(user) !== undefined,
    ...(typeof opts.server === 'function' ? await opts.server(tree, dir) : opts.server),
  });
  const port = server.address.port;
  return {
    server,
    port,
    tree,
    root,
    dir,
    keyFile,
    publicKeyLine: publicLine,
    password,
    logs,
    authenticator,
    alice: { port, user: 'alice', keyFile },
    alicePassword: { port, user: 'alice', password },
    reader: { port, user: 'reader', keyFile },
    backup: { port, user: 'backup', keyFile },
    nosnap: { port, user: 'nosnap', keyFile },
    async close() {
      await server.close(2000);
      await authenticator.close();
      await tree.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Connects ssh2's own client (for what OpenSSH cannot do: raw packets, password without sshpass). */
export function connectSsh2(
  port: number,
  user: string,
  auth: { privateKey?: Buffer | string; password?: string },
  /** More of ssh2's client options (keepaliveInterval, …). */
  more: Partial<ssh2.ConnectConfig> = {},
): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username: user, ...auth, readyTimeout: 20_000, ...more });
    // Without it, a small request written while a segment is unacknowledged waits for
    // the gateway's delayed ACK (up to 40 ms), and a test reading many files crawls (test/crash/kill.test.ts).
    client.setNoDelay(true);
  });
}

export function sftpOf(client: ssh2.Client): Promise<ssh2.SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
}

/**
 * The ssh2 sessions a test file opens, so that its afterAll (or afterEach)
 * ends them all with endAll(), however a test ended.
 */
export class Ssh2Sessions {
  readonly #clients: ssh2.Client[] = [];

  /** Logs in (connectSsh2) and keeps the client to end later. */
  async connect(port: number, user: string, auth: { privateKey?: Buffer | string; password?: string }): Promise<ssh2.Client> {
    const client = await connectSsh2(port, user, auth);
    this.#clients.push(client);
    return client;
  }

  /** connect(), then the sftp channel. */
  async open(
    port: number,
    user: string,
    auth: { privateKey?: Buffer | string; password?: string },
  ): Promise<{ client: ssh2.Client; sftp: ssh2.SFTPWrapper }> {
    const client = await this.connect(port, user, auth);
    return { client, sftp: await sftpOf(client) };
  }

  endAll(): void {
    for (const c of this.#clients.splice(0)) c.end();
  }
}

/**
 * A gateway with quotas: `quotas` is the quotas file's text
 * (src/quota/quotas-file.ts). Its close stops the server, then the guard
 * (which flushes usage), then the rest.
 */
export async function startQuotaGateway(quotas: string, opts: GatewayOptions = {}): Promise<Gateway & { guard: QuotaGuard }> {
  let guard: QuotaGuard | undefined;
  const gw = await startGateway({
    ...opts,
    server: async (tree, dir) => {
      await writeFile(join(dir, 'quotas'), quotas);
      guard = await QuotaGuard.open({
        quotasFile: join(dir, 'quotas'),
        usage: await UsageBook.open(join(dir, 'usage.json')),
        tree,
        logger: silentLogger(),
      });
      return { quota: guard };
    },
  });
  if (guard === undefined) throw new Error('the quota guard did not start');
  const started = guard;
  return {
    ...gw,
    guard: started,
    async close() {
      await gw.server.close(2000);
      await started.close();
      await gw.close();
    },
  };
}
