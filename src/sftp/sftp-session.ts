import { PermissionError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MemoryBudget } from '../util/memory-budget.js';
import type { QuotaGuard } from '../quota/index.js';
import { AppendOnlyPolicy } from './append-only.js';
import { HANDLERS, type Handler, type SessionContext } from './dispatch.js';
import { type Handle, HandleTable } from './handles.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import { STATUS } from './protocol/constants.js';
import { statusPacket } from './protocol/replies.js';
import type { Request } from './protocol/requests.js';
import type { SymlinkOrder } from './protocol/symlink-order.js';
import { type ReplyTicket, type SftpByteStream, SftpTransport } from './protocol/transport.js';
import { SessionQuota, type BeforeLink } from './quota-hooks.js';
import { ReplyRoom, replyBytes } from './reply-room.js';
import { RequestScheduler } from './scheduler.js';
import type { GatewayStats } from './stats.js';
import { SftpStatusError, toSftpStatus } from './status.js';
import type { UserTree } from './user-tree.js';
import type { WriteHandle } from './write-handle.js';

export interface SftpSessionOptions {
  view: UserTree;
  logger: Logger;
  stats: GatewayStats;
  /** Called when a request arrives and when one finishes: the connection's idle timer. */
  onActivity(): void;
  /**
   * The session is held back by its own client (true) or no longer (false):
   * too many of its requests are queued, or a request waits for the client
   * to read its replies. The connection's stall watch (a session held back
   * by the gateway's memory budget is not: it waits for others).
   */
  onPressure(paused: boolean): void;
  /** Quota checks and usage deltas (src/quota/guard.ts states the exact semantics); none: no quotas. */
  quota?: QuotaGuard | undefined;
  /** The account's `append-only` option: writes may not change what existed before this session (append-only.ts). */
  appendOnly?: boolean | undefined;
  /** Per-session bounds (see limits.ts); defaults as there. */
  limits?: Pick<Limits, 'maxHandles' | 'maxPendingRequests' | 'maxPendingBytes' | 'maxOutputBacklog'> | undefined;
  /**
   * The gateway's memory budget (src/util/memory-budget.ts): queued WRITE
   * bytes are charged to it, and while it is under pressure the session
   * does not read its channel. None: only the per-session bounds.
   */
  memory?: MemoryBudget | undefined;
  /** The order the client sends SYMLINK in (protocol/symlink-order.ts); default target first, as OpenSSH. */
  symlinkOrder?: SymlinkOrder | undefined;
}

/**
 * One SFTP session (one `sftp` subsystem channel): the transport decodes
 * packets and sends replies in request order; this class runs each request
 * through the dispatch table (dispatch.ts) under the scheduler, owns the
 * session's handles, and abandons uncommitted uploads when the channel goes.
 * Every request is answered exactly once: a status, or its data.
 */
export class SftpSession {
  readonly #transport: SftpTransport;
  readonly #ctx: SessionContext;
  readonly #scheduler: RequestScheduler;
  readonly #replies: ReplyRoom;
  readonly #onActivity: () => void;
  readonly #log: Logger;
  readonly #appendOnly: AppendOnlyPolicy | undefined;
  #closed = false;
  #finished: Promise<void> | undefined;
  /** Not reading because this session's own queue is full, or because the gateway's budget is under pressure. */
  #queueFull = false;
  #budgetPressured = false;
  /** Requests waiting for the client to read replies; they hold their queued bytes, of the budget too. */
  #waitingForClient = 0;
  readonly #onStall: (stalled: boolean) => void;
  #stalled = false;
  readonly #unwatchBudget: () => void;

  constructor(stream: SftpByteStream, opts: SftpSessionOptions) {
    this.#log = opts.logger;
    this.#onActivity = opts.onActivity;
    this.#appendOnly = opts.appendOnly === true ? new AppendOnlyPolicy() : undefined;
    const handles = new HandleTable(opts.limits?.maxHandles);
    this.#ctx = {
      view: opts.view,
      handles,
      stats: opts.stats,
      log: opts.logger,
      quota: opts.quota !== undefined ? new SessionQuota(opts.quota, opts.view) : undefined,
      commit: (handle, final) => this.#commit(handle, final),
      release: (handle) => this.#release(handle),
    };
    this.#scheduler = new RequestScheduler({
      ...(opts.limits !== undefined ? { highWaterBytes: opts.limits.maxPendingBytes, maxQueued: opts.limits.maxPendingRequests } : {}),
      memory: opts.memory,
      onPressure: (paused) => {
        this.#queueFull = paused;
        this.#updateReading();
        this.#updateStall();
      },
      onTaskError: (err) => this.#log.error({ err }, 'SFTP request handler threw'),
    });
    this.#transport = new SftpTransport(
      stream,
      {
        request: (request, reply) => this.#accept(request, reply),
        // The client's EOF: it sends nothing more. Answer what it already sent, then end the channel (as
        // sftp-server exits on EOF and sshd closes the channel), or the client waits for that close forever.
        end: () => void this.#scheduler.idle().then(() => this.#transport.finish(0)),
        closed: (reason) => {
          if (reason !== undefined) this.#log.info({ event: 'sftp_protocol_error', reason }, 'SFTP protocol error; closing session');
          void this.close();
        },
        taken: () => this.#replies.settle(),
      },
      opts.symlinkOrder,
    );
    this.#replies = new ReplyRoom(this.#transport, {
      max: opts.limits?.maxOutputBacklog ?? DEFAULT_LIMITS.maxOutputBacklog,
      memory: opts.memory,
    });
    this.#onStall = opts.onPressure;
    this.#budgetPressured = opts.memory?.pressured ?? false;
    this.#unwatchBudget =
      opts.memory?.watch((pressured) => {
        this.#budgetPressured = pressured;
        this.#updateReading();
      }) ?? (() => {});
    this.#updateReading();
  }

  #updateReading(): void {
    this.#transport.setPaused(this.#queueFull || this.#budgetPressured);
  }

  /**
   * Only what this session's own client causes feeds the connection's stall
   * watch. A request waiting for the client to read its replies counts even
   * when the queue is not full: its bytes are held in the gateway's budget,
   * and a client that never reads would otherwise keep every session paused
   * until idle_timeout.
   */
  #updateStall(): void {
    const stalled = this.#queueFull || this.#waitingForClient > 0;
    if (stalled === this.#stalled) return;
    this.#stalled = stalled;
    this.#onStall(stalled);
  }

  /** Resolves when nothing is running and every answer is written (for a graceful shutdown). */
  async idle(): Promise<void> {
    await this.#scheduler.idle();
    this.#transport.writePending();
  }

  /** Ends the session: queued requests are dropped, running ones finish, uploads not committed are abandoned. */
  close(): Promise<void> {
    if (this.#finished) return this.#finished;
    this.#closed = true;
    this.#unwatchBudget();
    // Requests waiting for room for their replies are let go (they see #closed and answer nothing).
    this.#replies.close();
    this.#finished = (async () => {
      this.#transport.close();
      await this.#scheduler.close();
      for (const handle of this.#ctx.handles.drain()) await this.#release(handle);
    })();
    return this.#finished;
  }

  #accept(request: Request, reply: ReplyTicket): void {
    this.#onActivity();
    const handler = HANDLERS[request.type] as Handler<Request>;
    const ctx = this.#ctx;
    const writes = handler.writes(request, ctx);
    const refused = writes && !ctx.view.writable;
    const appendOnly = writes ? this.#appendOnly : undefined;
    this.#scheduler.push({
      exclusive: refused ? false : !handler.shared(request, ctx),
      bytes: request.type === 'write' ? request.data.length : 0,
      run: async () => {
        if (this.#closed) return;
        // Every request waits for room for its reply, not only READs: a client sending thousands of
        // STATs without reading the answers would otherwise grow the output without bound. Waiting
        // here keeps requests queued, and the queue's bound then stops reading the channel.
        const expected = replyBytes(request);
        if (!(await this.#roomForReply(expected))) return;
        this.#replies.reserve(expected);
        let packet: Buffer;
        try {
          if (refused) throw new PermissionError('read-only session');
          // Checked here, as the request runs alone (writing requests are never shared), so no
          // other request of this session changes the tree between the check and the handler.
          const settle = await appendOnly?.admit(request, ctx).catch((err: unknown) => {
            if (err instanceof SftpStatusError && err.status === STATUS.PERMISSION_DENIED)
              this.#log.info({ event: 'append_only_refused', op: requestName(request) }, 'append-only account: request refused');
            throw err;
          });
          packet = await handler.run(request, ctx);
          // The request succeeded: its reply stands even if recording fails (a name not recorded
          // counts as existing before, which only refuses more).
          await settle?.().catch((err: unknown) => this.#log.warn({ err }, 'append-only: a change was not recorded'));
        } catch (err) {
          const op = requestName(request);
          const { code, message } = toSftpStatus(err, this.#log, op);
          this.#log.debug({ op, status: code }, 'SFTP request failed');
          packet = statusPacket(request.id, code, message);
        }
        reply.send(packet);
        this.#replies.unreserve(expected);
        this.#onActivity();
      },
    });
  }

  /** Waits until a reply of `bytes` fits (ReplyRoom); false if the session closed meanwhile. */
  async #roomForReply(bytes: number): Promise<boolean> {
    if (this.#replies.admitNow(bytes)) return true;
    this.#waitingForClient++;
    this.#updateStall();
    try {
      return await this.#replies.admit(bytes);
    } finally {
      this.#waitingForClient--;
      this.#updateStall();
    }
  }

  async #commit(handle: WriteHandle, final: boolean): Promise<void> {
    const { quota, stats, log } = this.#ctx;
    const mode = handle.mode;
    const started = performance.now();
    try {
      const commit = (beforeLink?: BeforeLink) => handle.commit(beforeLink);
      if (await (quota !== undefined ? quota.commit(handle, commit) : commit())) {
        stats.uploadsCommitted++;
        log.debug({ event: 'commit', mode, size: handle.size, ms: Math.round(performance.now() - started) }, 'upload committed');
      }
    } catch (err) {
      stats.uploadsFailed++;
      log.warn({ event: 'upload_failed', err: (err as Error).name }, 'upload not committed; previous version kept');
      throw err;
    } finally {
      if (final) await this.#release(handle);
    }
  }

  async #release(handle: Handle): Promise<void> {
    if (handle.kind === 'dir') handle.close();
    else if (handle.kind === 'read') handle.reader.close?.();
    else if (handle.kind === 'write') {
      this.#ctx.view.forget(handle);
      await handle.abandon();
    }
  }
}

/** A request's name for logs: its type, or an extension's name. */
function requestName(request: Request): string {
  return request.type === 'extended' ? request.name || 'extended' : request.type;
}
