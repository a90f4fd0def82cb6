/** Default output queued for the client's window above which requests wait (a client that does not read its replies). */
export const MAX_OUTPUT_BACKLOG = 8 * 1024 * 1024;
const BACKLOG_POLL_MS = 10;
/** Longest pause between two looks at a backlog that does not drain (each look walks ssh2's buffer list). */
const BACKLOG_POLL_MAX_MS = 50;

/**
 * The session's bound on output: replies queued for the client's SSH window
 * (`backlog()`, ssh2's buffer list) above `max` make every request wait
 * before it runs, so a client that sends requests and never reads the
 * answers stalls itself instead of growing the gateway's memory. ssh2 has no
 * event for its buffer draining, so the waiters share one poll, backing off
 * from 10 to 50 ms.
 */
export class OutputRoom {
  #room: Promise<void> | undefined;

  constructor(
    private readonly backlog: () => number,
    private readonly max: number,
    /** True once the session is closing: waiters stop waiting. */
    private readonly closed: () => boolean,
  ) {}

  /** Resolves once the backlog is at most `max` (at once when it already is). */
  wait(): Promise<void> {
    if (this.#room !== undefined) return this.#room;
    if (this.closed() || this.backlog() <= this.max) return Promise.resolve();
    this.#room = (async () => {
      for (let delay = BACKLOG_POLL_MS; !this.closed() && this.backlog() > this.max; ) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, BACKLOG_POLL_MAX_MS);
      }
    })().finally(() => {
      this.#room = undefined;
    });
    return this.#room;
  }
}
