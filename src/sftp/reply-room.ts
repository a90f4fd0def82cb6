import type { MemoryBudget } from '../util/memory-budget.js';
import { LIMITS } from './protocol/constants.js';
import { DATA_HEADER_BYTES } from './protocol/replies.js';
import type { Request } from './protocol/requests.js';

/**
 * What ReplyRoom needs of the session's transport (SftpTransport), which
 * calls settle() whenever the backlog went down.
 */
export interface ReplyOutput {
  /** Bytes of replies the client has not taken yet: written, or answered and waiting for their turn. */
  readonly backlog: number;
}

/**
 * Each session may hold this many bytes of replies outside the gateway's
 * memory budget: two of the largest READ replies, one being taken by the
 * client and one ready behind it.
 */
export const REPLY_FLOOR = 2 * (LIMITS.maxReadLength + DATA_HEADER_BYTES);

/** The most a request's reply can be, for what only READ sends in bulk; 0 for the small replies of the rest. */
export function replyBytes(request: Request): number {
  return request.type === 'read' ? Math.min(request.length, LIMITS.maxReadLength) + DATA_HEADER_BYTES : 0;
}

/**
 * Room for one session's replies: the bytes its client has not read yet
 * (the transport's backlog) and those the requests running will send
 * (reserved as they start). A request starts only once its reply fits:
 *
 * - never past `max` ([limits] max_output_backlog) for the session;
 * - up to REPLY_FLOOR, always;
 * - past the floor only with bytes of the gateway's memory budget
 *   (MemoryBudget.tryAcquireReplies), so the replies of all sessions
 *   together stay within it, plus a floor each.
 *
 * Why: replies were bounded per session only. A download kept up to
 * max_output_backlog (8 MiB) of them waiting for the client's SSH window,
 * plus the READs running, and 32 OpenSSH `get`s at once took the gateway
 * to 590 MiB RSS, 287 MiB of it in buffers (351–359 MiB since;
 * docs/operations.md, Memory).
 *
 * Requests are admitted in the order they start (arrival order): while one
 * waits, none behind it runs. So what it waits for, the session's own
 * replies going down (re-checked when the client takes some, and when a
 * request running sends its reply) until its reply fits without the
 * budget, is made only of replies of the requests before it, which finish
 * and reach the client without it; were a later request's reply counted,
 * it would wait behind this one for ever (replies leave in request order).
 * With none before it and nothing left to take, a reply always fits (it is
 * smaller than the floor). Nothing waits for another session, and a client
 * that never reads is the stall watch's to drop, as before. Budget bytes
 * go back as the client takes the replies (settle), and all of them at
 * close.
 */
export class ReplyRoom {
  #reserved = 0;
  /** Budget bytes this session holds for its replies. */
  #charged = 0;
  #closed = false;
  /** A request is waiting for room; the ones after it wait for their turn here. */
  #waiting = false;
  readonly #turns: (() => void)[] = [];
  /** The waiting request's wake-up, called when held went down or the session closed. */
  #wake: (() => void) | undefined;

  constructor(
    private readonly output: ReplyOutput,
    private readonly opts: { max: number; memory?: MemoryBudget | undefined },
  ) {}

  /** Reply bytes this session holds: not taken by the client yet, or promised to requests running. */
  get held(): number {
    return this.output.backlog + this.#reserved;
  }

  /** Budget bytes held for them (tests). */
  get charged(): number {
    return this.#charged;
  }

  /** Admits a reply of `bytes` at once if nothing waits before it and it fits; else false, and admit() waits. */
  admitNow(bytes: number): boolean {
    return !this.#waiting && this.#fits(bytes);
  }

  /** Waits for this request's turn, then for room for its reply; false if the session closed meanwhile. */
  async admit(bytes: number): Promise<boolean> {
    // The turn is handed over with #waiting still set, so no request starting meanwhile jumps the queue.
    if (this.#waiting) await new Promise<void>((resolve) => this.#turns.push(resolve));
    else this.#waiting = true;
    try {
      while (!this.#closed && !this.#fits(bytes)) await new Promise<void>((resolve) => (this.#wake = resolve));
      return !this.#closed;
    } finally {
      const next = this.#turns.shift();
      if (next !== undefined) next();
      else this.#waiting = false;
    }
  }

  /** A request admitted for `bytes` starts. */
  reserve(bytes: number): void {
    this.#reserved += bytes;
  }

  /** That request's reply went to the transport. */
  unreserve(bytes: number): void {
    this.#reserved -= bytes;
    this.settle();
  }

  /** Gives back the budget bytes that no longer cover anything, and wakes a waiting request: call when the backlog went down. */
  settle(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    if (this.#charged === 0) return;
    const needed = this.#closed ? 0 : Math.max(0, this.held - REPLY_FLOOR);
    if (this.#charged <= needed) return;
    this.opts.memory?.releaseReplies(this.#charged - needed);
    this.#charged = needed;
  }

  /** The session ended: every budget byte goes back, none is taken again, and every waiter is let go. */
  close(): void {
    this.#closed = true;
    this.settle();
    for (const turn of this.#turns.splice(0)) turn();
  }

  /** Whether a reply of `bytes` fits now; takes the budget bytes it needs if so. */
  #fits(bytes: number): boolean {
    // A closed session's requests end without replying.
    if (this.#closed) return true;
    const after = this.held + bytes;
    if (after > this.opts.max) return false;
    const { memory } = this.opts;
    if (memory === undefined || after <= REPLY_FLOOR) return true;
    const uncovered = after - REPLY_FLOOR - this.#charged;
    if (uncovered <= 0) return true;
    if (!memory.tryAcquireReplies(uncovered)) return false;
    this.#charged += uncovered;
    return true;
  }
}
