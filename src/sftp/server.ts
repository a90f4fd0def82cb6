import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { ClientInfo, Connection as SshConnection } from 'ssh2';
import ssh2 from '../crypto/ssh2.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { EventRecorder } from '../events/api.js';
import { AddressList, type Defender } from '../defender/index.js';
import type { QuotaGuard } from '../quota/index.js';
import type { Logger } from '../log.js';
import type { MemoryBudget } from '../util/memory-budget.js';
import type { Tree } from '../tree/index.js';
import { cleanSpoolDir, EncryptedSpool, type SpoolBase } from './spool.js';
import { GatewayConnection } from './connection.js';
import { kexAlgorithms, OfferReader } from './kex.js';
import { ConnectionCounter, DEFAULT_LIMITS, type Limits } from './limits.js';
import { UploadOverlay } from './overlay.js';
import { readProxyHeader } from './proxy-protocol.js';
import { GatewayStats } from './stats.js';
import type { WriteHandle } from './write-handle.js';

export interface SftpServerOptions {
  tree: Tree;
  authenticator: Authenticator;
  /** Private host keys (OpenSSH or PEM), e.g. one ed25519 and one rsa; one per key type is used. */
  hostKeys: (string | Buffer)[];
  /** Default 127.0.0.1. */
  host?: string | undefined;
  /** Default 8022; 0 picks a free port (see SftpServer.address). */
  port?: number | undefined;
  /** The convergence secret for a user's uploads (same secret + same content = same file cap). */
  convergenceFor(user: string): Uint8Array;
  /** Where out-of-order uploads are spooled (encrypted); cleaned of leftovers at start. Must not be shared by two gateways. */
  spoolDir: string;
  logger: Logger;
  stats?: GatewayStats | undefined;
  /** A connection with no request for this long is closed (default 15 min). */
  idleTimeoutMs?: number | undefined;
  /** Serve legacy scp (`scp -t`/`scp -f` over exec) as SFTP requests (scp/scp.ts). Default true. */
  legacyScp?: boolean | undefined;
  /** Offer diffie-hellman-group14-sha1 for clients with no newer key exchange (kex.ts). Default false. */
  kexSha1?: boolean | undefined;
  /** Every session read-only, whatever its root cap. */
  readOnly?: boolean | undefined;
  /** Serve /.snapshots/ in writable account roots (snapshots-folder.ts). Default true. */
  snapshots?: boolean | undefined;
  /** Committed uploads, renames, removes, mkdirs and rmdirs are reported here (docs/spec/events.md). */
  events?: EventRecorder | undefined;
  /** Connection, session and request limits; each missing one takes DEFAULT_LIMITS' value. */
  limits?: Partial<Limits> | undefined;
  /** Brute-force defence: admits connections and scores failed logins. None: no bans, no refused names. */
  defender?: Defender | undefined;
  /**
   * Whether a user name has an account (cheap, no secret involved), asked only
   * after a refusal to score it: an unknown user scores more. Default: every
   * name counts as known (the lower score).
   */
  isKnownUser?(user: string): boolean | undefined;
  /** Per-account quotas (src/quota); none: no quotas. */
  quota?: QuotaGuard | undefined;
  /** Pause before answering a refused password or signature (default 0; capstan run: [defender] failure_delay). */
  authFailureDelayMs?: number | undefined;
  /**
   * Load balancers (addresses, CIDRs) whose connections start with a PROXY
   * protocol header naming the real client (proxy-protocol.ts); required from
   * them, never read from anyone else. Default none.
   */
  proxyProtocolFrom?: readonly string[] | undefined;
  /**
   * The gateway-wide memory budget ([limits] memory_budget) that queued WRITE
   * bytes of every session are charged to; the same object the Tree's
   * writers and readers draw from. None: per-session bounds only.
   */
  memory?: MemoryBudget | undefined;
}

export interface SftpServer {
  readonly address: { host: string; port: number };
  /** SHA256:base64 (OpenSSH's format) of each host key served, in the order given. */
  readonly hostKeyFingerprints: string[];
  readonly stats: GatewayStats;
  /**
   * Stops accepting connections, gives requests already received (uploads
   * being committed by CLOSE) up to graceMs to finish, then ends every
   * connection; uploads not closed by then are abandoned. Resolves when all
   * sockets are closed.
   */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8022;
export const DEFAULT_IDLE_TIMEOUT_MS = 15 * 60 * 1000;
const DEFAULT_GRACE_MS = 10_000;

/** OpenSSH's fingerprint of a public key blob. */
function fingerprint(publicBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '');
}

function hostKeyFingerprints(keys: (string | Buffer)[]): string[] {
  return keys.map((key) => {
    const given = ssh2.utils.parseKey(key);
    const parsed = Array.isArray(given) ? given[0] : given;
    if (parsed === undefined) throw new Error('cannot parse host key: no key in it');
    if (parsed instanceof Error) throw new Error(`cannot parse host key: ${parsed.message}`);
    return fingerprint(parsed.getPublicSSH());
  });
}

export async function startSftpServer(opts: SftpServerOptions): Promise<SftpServer> {
  await cleanSpoolDir(opts.spoolDir);
  const logger = opts.logger.child({ component: 'sftp' });
  const stats = opts.stats ?? new GatewayStats();
  const fingerprints = hostKeyFingerprints(opts.hostKeys);
  const overlay = new UploadOverlay<WriteHandle>();
  const connections = new Set<GatewayConnection>();
  /** Every open socket, including those still before their SSH handshake. */
  const sockets = new Set<Socket>();
  let accepting = true;
  let nextId = 1;
  const limits: Limits = { ...DEFAULT_LIMITS, ...definedOnly(opts.limits ?? {}) };
  const counter = new ConnectionCounter(limits);
  // Its owner starts it (ban list refresh, sweeps) and closes it after us.
  const defender = opts.defender;

  const deps = {
    tree: opts.tree,
    authenticator: opts.authenticator,
    convergenceFor: opts.convergenceFor,
    createSpool: (base?: SpoolBase) => EncryptedSpool.create(opts.spoolDir, { base }),
    overlay,
    logger,
    stats,
    idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    readOnly: opts.readOnly === true,
    legacyScp: opts.legacyScp !== false,
    kexSha1: opts.kexSha1 === true,
    snapshots: opts.snapshots !== false,
    accepting: () => accepting,
    events: opts.events,
    limits,
    counter,
    defender,
    isKnownUser: opts.isKnownUser ?? (() => true),
    authFailureDelayMs: opts.authFailureDelayMs ?? 0,
    quota: opts.quota,
    memory: opts.memory,
  };

  const ssh = new ssh2.Server({
    hostKeys: opts.hostKeys,
    ident: 'capstan',
    algorithms: { kex: kexAlgorithms(opts.kexSha1 === true) },
  });
  ssh.on('error', (err: Error) => logger.error({ err }, 'ssh server error'));

  // ssh2 builds its Client inside injectSocket() but hands it to us only in
  // 'connection', which it emits while parsing the client's first bytes,
  // synchronously inside that socket's 'data' event. Our own 'data' listener,
  // added before ssh2's, runs first and names the socket being parsed.
  let parsing: Socket | undefined;
  ssh.on('connection', (client: SshConnection, info: ClientInfo) => {
    const socket = parsing;
    if (socket === undefined || !accepting) {
      client.end();
      return;
    }
    socket.removeListener('data', markParsing);
    const offers = offerReaders.get(socket);
    const connection = new GatewayConnection(nextId++, socket, client, deps, {
      peer: peers.get(socket),
      software: info.header.versions.software,
      offer: () => offers?.offer,
    });
    connections.add(connection);
    void connection.closed.then(() => connections.delete(connection));
  });
  function markParsing(this: Socket): void {
    parsing = this;
  }

  /** What each client offers in its KEXINIT, read beside ssh2 until that packet is in. */
  const offerReaders = new WeakMap<Socket, OfferReader>();
  /** The client a load balancer named in its PROXY header, per socket (absent: the socket's own peer). */
  const peers = new WeakMap<Socket, { address: string; port: number }>();
  const balancers = new AddressList(opts.proxyProtocolFrom ?? []);
  /** Connections from a balancer whose PROXY header has not arrived yet (closed at shutdown). */
  const awaitingHeader = new Set<Socket>();

  const net = createServer((socket) => {
    if (!accepting) {
      socket.destroy();
      return;
    }
    socket.on('error', () => {}); // ssh2 reports socket errors on the client; never crash on one
    const direct = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    if (!balancers.has(direct.address)) {
      admit(socket, direct);
      return;
    }
    // From a load balancer: the client is whoever its PROXY header names; no header, no connection.
    awaitingHeader.add(socket);
    void readProxyHeader(socket, limits.loginGraceMs).then((peer) => {
      awaitingHeader.delete(socket);
      if (peer.kind === 'refused') {
        logger.info(
          { event: 'connection_refused', remoteAddress: direct.address, reason: 'proxy_protocol', detail: peer.reason },
          'connection refused',
        );
        socket.destroy();
        return;
      }
      if (!accepting || socket.destroyed) {
        socket.destroy();
        return;
      }
      const client = peer.kind === 'client' ? { address: peer.address, port: peer.port } : direct;
      peers.set(socket, client);
      admit(socket, client);
      socket.resume();
    });
  });

  /** The defender and the connection limits decide on the client's address; then the socket is handed to ssh2. */
  function admit(socket: Socket, client: { address: string; port: number }): void {
    // Before a single byte of SSH: a banned or deny-listed client and one past a connection limit cost
    // us an accept and a close, nothing more (no key exchange, no log line per attempt above debug).
    const remoteAddress = client.address;
    const admission = defender?.admit(remoteAddress);
    if (admission !== undefined && !admission.ok) {
      logger.debug({ event: 'connection_refused', remoteAddress, reason: admission.reason }, 'connection refused');
      socket.destroy();
      return;
    }
    const slot = counter.openConnection(remoteAddress);
    if (!slot.ok) {
      logger.info({ event: 'connection_refused', remoteAddress, reason: slot.reason }, 'connection refused: limit reached');
      socket.destroy();
      return;
    }
    socket.once('close', slot.release);
    // Nagle's algorithm holds back our small replies (SFTP STATUS, SSH window
    // adjusts) until the client ACKs, and the client, waiting on those very
    // replies, delays its ACK: on loopback a 1 GiB put through a bare ssh2
    // server took 10-16 s with Nagle and 1.8-2.6 s without. OpenSSH's sshd
    // sets TCP_NODELAY on its sessions too.
    socket.setNoDelay(true);
    writeOncePerTick(socket);
    // A client that never sends its SSH identification never becomes a GatewayConnection (whose
    // own timer enforces the login grace): without this it would hold its slot forever.
    const silent = setTimeout(() => {
      if (socket.listeners('data').includes(markParsing)) socket.destroy();
    }, limits.loginGraceMs).unref();
    socket.once('close', () => clearTimeout(silent));
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('data', markParsing);
    offerReaders.set(socket, new OfferReader(socket));
    ssh.injectSocket(socket);
  }
  const host = opts.host ?? DEFAULT_HOST;
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen(opts.port ?? DEFAULT_PORT, host, () => {
      net.off('error', reject);
      resolve();
    });
  });
  net.on('error', (err) => logger.error({ err }, 'listener error'));
  const bound = net.address();
  const address = { host, port: typeof bound === 'object' && bound !== null ? bound.port : (opts.port ?? DEFAULT_PORT) };
  logger.info({ event: 'listening', host: address.host, port: address.port, hostKeys: fingerprints }, 'SFTP gateway listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    hostKeyFingerprints: fingerprints,
    stats,
    close(graceMs = DEFAULT_GRACE_MS) {
      closing ??= (async () => {
        accepting = false;
        const listenerClosed = new Promise<void>((resolve) => net.close(() => resolve()));
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
        await Promise.race([Promise.all([...connections].map((c) => c.idle())), grace]);
        clearTimeout(timer);
        for (const c of connections) c.end('server shutting down');
        // Sockets still before their SSH header (they keep our listener until then) have nothing to save.
        for (const socket of sockets) if (socket.listeners('data').includes(markParsing)) socket.destroy();
        for (const socket of awaitingHeader) socket.destroy();
        await Promise.all([...connections].map((c) => c.closed));
        await listenerClosed;
        logger.info({ event: 'stopped' }, 'SFTP gateway stopped');
      })();
      return closing;
    },
  };
}

/** Drops keys whose value is undefined, so they do not override defaults in a spread. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * ssh2 writes every SSH packet with its own `socket.write` (a 255 KiB DATA reply is eight packets
 * of 32 KiB, and as many syscalls and TCP segments with TCP_NODELAY). Corking the socket at the
 * first write of a tick and uncorking it on the next tick hands the kernel all of them in one writev.
 */
function writeOncePerTick(socket: Socket): void {
  const write = socket.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return write.apply(this, args);
  } as Socket['write'];
}
