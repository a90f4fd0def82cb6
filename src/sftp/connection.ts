import type { Socket } from 'node:net';
import type { NegotiatedAlgorithms as Negotiated, ServerChannel, Connection as SshConnection } from 'ssh2';
import type { Authenticator } from '../auth/authenticator.js';
import type { EventRecorder } from '../events/api.js';
import { parseChecksumCommand, runChecksumCommand } from './checksum-exec.js';
import { type ClientOffer, describeFailure } from './kex.js';
import type { Defender } from '../defender/index.js';
import type { Tree } from '../tree/index.js';
import type { Logger } from '../log.js';
import type { MemoryBudget } from '../util/memory-budget.js';
import type { ConnectionCounter, Limits, Release } from './limits.js';
import type { UploadOverlay } from './overlay.js';
import { type SymlinkOrder, symlinkOrderOf } from './protocol/symlink-order.js';
import type { SftpByteStream } from './protocol/transport.js';
import { SftpSession } from './sftp-session.js';
import { createAuthHandler, type Login } from './ssh-auth.js';
import { parseScpCommand } from './scp/command.js';
import { ScpServer } from './scp/scp.js';
import { refuseWithMessage, serveSessionChannel, type ExecResult, type StdinReader } from './ssh-session.js';
import type { GatewayStats } from './stats.js';
import { UserTree } from './user-tree.js';
import type { WriteHandle, WriteHandleDeps } from './write-handle.js';

/** Time a client has to log in by default (sshd's LoginGraceTime default); [limits] login_grace_time. */
export const LOGIN_GRACE_MS = 120_000;
/** SFTP channels one connection may have open at once. */
export const MAX_SESSIONS_PER_CONNECTION = 8;
/** Checksum commands (exec) one connection may have running at once. */
export const MAX_EXECS_PER_CONNECTION = 8;
/** The longest between two looks at whether a connection is idle (ms). */
const IDLE_CHECK_MS = 60_000;

export interface ConnectionDeps {
  tree: Tree;
  authenticator: Authenticator;
  convergenceFor(user: string): Uint8Array;
  createSpool: WriteHandleDeps['createSpool'];
  overlay: UploadOverlay<WriteHandle>;
  logger: Logger;
  stats: GatewayStats;
  idleTimeoutMs: number;
  readOnly: boolean;
  /** Serve legacy scp over exec (scp/scp.ts). */
  legacyScp: boolean;
  /** diffie-hellman-group14-sha1 is offered ([sftpd] kex_sha1); a failed handshake's log line says so. */
  kexSha1: boolean;
  /** Serve /.snapshots/ in writable roots. */
  snapshots: boolean;
  /** False once the server is closing: no new sessions. */
  accepting(): boolean;
  /** Where committed changes are reported (none: events off). */
  events?: EventRecorder | undefined;
  limits: Limits;
  counter: ConnectionCounter;
  defender: Defender | undefined;
  isKnownUser(user: string): boolean | undefined;
  authFailureDelayMs: number;
  quota?: import('../quota/index.js').QuotaGuard | undefined;
  /** The gateway-wide memory budget every session draws from (none: per-session bounds only). */
  memory?: MemoryBudget | undefined;
}

/**
 * One SSH connection: authentication, then up to MAX_SESSIONS_PER_CONNECTION
 * SFTP sessions. The login (user and root cap) lives only in this object's
 * memory. Ends itself when idleTimeoutMs pass with no request arriving or
 * finishing and nothing else from the client (an SSH keepalive counts: an
 * idle sshfs mount with -o ServerAliveInterval stays), or when not logged
 * in within limits.loginGraceMs. Stops reading the socket
 * while any of its sessions holds more queued request bytes than its bound.
 */
export class GatewayConnection {
  readonly #socket: Socket;
  readonly #client: SshConnection;
  readonly #deps: ConnectionDeps;
  readonly #log: Logger;
  readonly #remoteAddress: string;
  readonly #remotePort: number;
  readonly #symlinkOrder: SymlinkOrder;
  readonly #sessions = new Set<SftpSession>();
  /** Checksum commands running now (#exec). */
  #execs = 0;
  readonly #startedAt = Date.now();
  #login: Login | undefined;
  #releaseLogin: Release | undefined;
  #view: UserTree | undefined;
  #pressured = new Set<SftpSession>();
  #lastActivity = Date.now();
  /** The socket's bytesRead at the last idle check, and when it was last seen to grow. */
  #bytesReadSeen = 0;
  #heardAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #ended = false;
  /** Aborted when the socket closes: user-directory lookups for this connection stop waiting. */
  readonly #gone = new AbortController();
  readonly closed: Promise<void>;

  /**
   * `peer`: the client a load balancer named in a PROXY header (default: the
   * socket's own peer); `software`: the software field of the client's SSH
   * identification (logged, and it tells the order of SYMLINK's strings);
   * `offer`: what the client offered in its KEXINIT, for the log line of a
   * failed handshake.
   */
  constructor(
    id: number,
    socket: Socket,
    client: SshConnection,
    deps: ConnectionDeps,
    from: { peer?: { address: string; port: number } | undefined; software: string; offer?: () => ClientOffer | undefined },
  ) {
    this.#socket = socket;
    this.#client = client;
    this.#deps = deps;
    this.#remoteAddress = from.peer?.address ?? socket.remoteAddress ?? 'unknown';
    this.#remotePort = from.peer?.port ?? socket.remotePort ?? 0;
    this.#symlinkOrder = symlinkOrderOf(from.software);
    // Bound to a connection number only: the events below name the address themselves, once.
    this.#log = deps.logger.child({ conn: id });
    this.#log.info(
      { event: 'connect', remoteAddress: this.#remoteAddress, remotePort: this.#remotePort, client: from.software },
      'connection',
    );
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => void this.#onClose());
    socket.once('close', () => this.#gone.abort());
    this.#arm(Math.min(deps.limits.loginGraceMs, deps.idleTimeoutMs));

    client.on('handshake', (negotiated: Negotiated) => {
      this.#log.debug(
        {
          event: 'handshake',
          kex: negotiated.kex,
          hostKey: negotiated.serverHostKey,
          cipher: negotiated.cs.cipher,
          mac: negotiated.cs.mac,
        },
        'key exchange done',
      );
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (err.level === 'handshake') {
        // As OpenSSH's "Unable to negotiate …: their offer": the operator sees why a client never got in.
        const reason = err.message.replace(/^Handshake failed: /, '');
        const detail = describeFailure(reason, from.offer?.(), deps.kexSha1);
        this.#log.info({ event: 'handshake_failed', remoteAddress: this.#remoteAddress, reason, ...detail }, 'key exchange failed');
        return;
      }
      this.#log.debug({ err: err.message, level: err.level }, 'connection error');
    });
    client.on(
      'authentication',
      createAuthHandler({
        authenticator: deps.authenticator,
        logger: this.#log,
        stats: deps.stats,
        remoteAddress: this.#remoteAddress,
        remotePort: this.#remotePort,
        onLogin: (login) => this.#onLogin(login),
        onTooManyFailures: () => this.end('too many authentication failures'),
        defender: deps.defender,
        isKnownUser: deps.isKnownUser,
        failureDelayMs: deps.authFailureDelayMs,
        mayLogin: (user) => {
          this.#releaseLogin?.(); // a login refused after this (no convergence secret) may be retried
          this.#releaseLogin = deps.counter.login(user);
          return this.#releaseLogin !== undefined;
        },
        onRefused: (reason) => this.end(reason),
        signal: this.#gone.signal,
      }),
    );
    client.on('ready', () => this.#touch());
    client.on('session', (accept) =>
      serveSessionChannel(accept, {
        logger: this.#log,
        mayStartSftp: () => this.#maySession(),
        startSftp: (sftp) => void this.#startSftp(sftp),
        // Only the checksum commands, and only once logged in (checksum-exec.ts parses strictly).
        exec: (command, stdin) => this.#exec(command, stdin),
        execChannel: (command, channel) => this.#scp(command, channel),
      }),
    );
  }

  get user(): string | undefined {
    return this.#login?.result.user;
  }

  /** A checksum command, at most MAX_EXECS_PER_CONNECTION at once (each may read a whole file, or wait for its input). */
  #exec(command: string, stdin: StdinReader): Promise<ExecResult> | undefined {
    const view = this.#view;
    if (view === undefined) return undefined;
    if (this.#execs >= MAX_EXECS_PER_CONNECTION) {
      const name = parseChecksumCommand(command)?.name;
      return name === undefined
        ? undefined
        : Promise.resolve({ stdout: '', stderr: `${name}: too many commands at once on this connection\n`, code: 1 });
    }
    const answer = runChecksumCommand(view, command, stdin);
    if (answer === undefined) return undefined;
    this.#execs++;
    return answer.finally(() => this.#execs--);
  }

  #maySession(): boolean {
    return this.#view !== undefined && this.#deps.accepting() && this.#sessions.size < MAX_SESSIONS_PER_CONNECTION;
  }

  /** Legacy scp: true if `command` is one and this connection took the channel for it (scp/scp.ts). */
  #scp(command: string, channel: ServerChannel): boolean {
    const view = this.#view;
    if (view === undefined || !this.#deps.legacyScp) return false;
    const parsed = parseScpCommand(command);
    if (parsed === undefined) return false;
    if ('error' in parsed) {
      this.#log.info({ event: 'scp_refused', commandBytes: Buffer.byteLength(command) }, 'legacy scp command not served');
      refuseWithMessage(channel, `${parsed.error}\n`);
      return true;
    }
    const server = new ScpServer(channel, parsed, {
      user: view.user,
      maxFileSize: view.tree.maxFileSize,
      logger: this.#log.child({ user: view.user }),
      startSession: (stream) => (this.#maySession() ? this.#startSftp(stream) : undefined),
    });
    void server.run();
    return true;
  }

  /** Resolves when every session has nothing queued or running. */
  async idle(): Promise<void> {
    await Promise.all([...this.#sessions].map((s) => s.idle()));
  }

  /** Disconnects; sessions abandon their uncommitted uploads as the channels close. */
  end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#log.info({ event: 'disconnecting', reason }, 'disconnecting');
    try {
      this.#client.end();
    } catch {
      // already gone
    }
    // A peer that does not close its side within a second is cut off.
    setTimeout(() => this.#socket.destroy(), 1000).unref();
  }

  #onLogin(login: Login): void {
    this.#login = login;
    const { user } = login.result;
    const deps = this.#deps;
    this.#view = new UserTree({
      tree: deps.tree,
      user,
      root: login.root,
      writable: !deps.readOnly,
      // The gateway's [snapshots] browse, unless the account's no-snapshots option turns it off.
      snapshots: deps.snapshots && login.result.noSnapshots !== true,
      overlay: deps.overlay,
      writeDeps: {
        tree: deps.tree,
        convergence: deps.convergenceFor(user),
        createSpool: deps.createSpool,
        ...(deps.events !== undefined ? { events: deps.events, user } : {}),
      },
      events: deps.events,
    });
    this.#lastActivity = Date.now();
    this.#bytesReadSeen = this.#socket.bytesRead;
    this.#arm(deps.idleTimeoutMs); // replaces the login grace timer
  }

  /** Serves an SFTP session on `channel`; resolves once it has closed and is no longer counted. */
  #startSftp(channel: SftpByteStream): Promise<void> {
    const stats = this.#deps.stats;
    const session: SftpSession = new SftpSession(channel, {
      view: this.#view!,
      logger: this.#log.child({ user: this.user }),
      stats,
      limits: this.#deps.limits,
      quota: this.#deps.quota,
      memory: this.#deps.memory,
      symlinkOrder: this.#symlinkOrder,
      // Sessions start only after a login; were there none, the safer reading is append-only.
      appendOnly: this.#login?.result.appendOnly ?? true,
      onActivity: () => this.#touch(),
      onPressure: (paused) => this.#pressure(session, paused),
    });
    this.#sessions.add(session);
    stats.sessionsTotal++;
    stats.sessionsActive++;
    return new Promise((resolve) => {
      channel.on('close', () => {
        void session.close().finally(() => {
          if (this.#sessions.delete(session)) stats.sessionsActive--;
          this.#pressure(session, false);
          resolve();
        });
      });
    });
  }

  #pressure(session: SftpSession, paused: boolean): void {
    const before = this.#pressured.size;
    if (paused) this.#pressured.add(session);
    else this.#pressured.delete(session);
    if (before === 0 && this.#pressured.size > 0)
      this.#log.debug({ event: 'throttled' }, 'the client is not keeping up (too many requests pending, or its replies unread)');
    // The session itself stopped reading its channel, which closes the client's SSH window for that
    // channel only; the connection keeps being read (other sessions, keepalives, the client's close).
    if (this.#pressured.size > 0) {
      this.#watchStall();
    } else {
      clearInterval(this.#stallTimer);
      this.#stallTimer = undefined;
    }
  }

  /** While the socket is paused, drops the connection once no request has finished for stallTimeoutMs. */
  #watchStall(): void {
    if (this.#stallTimer !== undefined) return;
    const limit = this.#deps.limits.stallTimeoutMs;
    this.#stallTimer = setInterval(
      () => {
        if (Date.now() - this.#lastActivity >= limit) this.end('stalled: the client does not read its replies');
      },
      Math.min(limit, 1000),
    );
    this.#stallTimer.unref();
  }

  #touch(): void {
    this.#lastActivity = Date.now();
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    // Once logged in, at least once a minute: bytes the client sent are noticed within a minute.
    const wait = this.#login === undefined ? ms : Math.min(ms, IDLE_CHECK_MS);
    this.#timer = setTimeout(() => void this.#checkIdle(), wait);
    this.#timer.unref();
  }

  async #checkIdle(): Promise<void> {
    this.#timer = undefined;
    if (this.#ended) return;
    if (this.#login === undefined) return this.end('login grace time over');
    // Activity is a request arriving or finishing. A connection whose requests are stuck (a client
    // that floods WRITEs and never reads its replies, so the socket stays paused) makes no progress
    // and is ended like an idle one. A single request running longer than the timeout (a commit to a
    // very slow store) is ended too; the timeout is meant to be far longer than any commit.
    // Anything else the client sent counts as well (SSH keepalives, window adjustments): it is there.
    // A paused socket reads nothing, so a stalled client stays quiet.
    const now = Date.now();
    const read = this.#socket.bytesRead;
    if (read !== this.#bytesReadSeen) {
      this.#bytesReadSeen = read;
      this.#heardAt = now;
    }
    const limit = this.#deps.idleTimeoutMs;
    const quietFor = now - Math.max(this.#lastActivity, this.#heardAt);
    if (quietFor >= limit) return this.end('idle timeout');
    this.#arm(Math.max(1, limit - quietFor));
  }

  async #onClose(): Promise<void> {
    clearTimeout(this.#timer);
    clearInterval(this.#stallTimer);
    this.#ended = true;
    this.#releaseLogin?.();
    const sessions = [...this.#sessions];
    await Promise.all(sessions.map((s) => s.close()));
    for (const s of sessions) if (this.#sessions.delete(s)) this.#deps.stats.sessionsActive--;
    this.#log.info(
      {
        event: 'disconnect',
        remoteAddress: this.#remoteAddress,
        remotePort: this.#remotePort,
        user: this.user,
        bytesIn: this.#socket.bytesRead,
        bytesOut: this.#socket.bytesWritten,
        durationMs: Date.now() - this.#startedAt,
      },
      'disconnected',
    );
  }
}
