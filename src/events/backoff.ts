/** Exponential backoff with jitter, shared by the dispatcher and the AMQP reconnect. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/**
 * The delay before retry number `attempt` (0-based): initialMs·2^attempt,
 * capped at maxMs, then drawn uniformly from its upper half ("equal
 * jitter"), so gateways that lost the same sink do not retry in lockstep
 * and a retry never comes much sooner than the schedule.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const exp = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/** Sleeps `ms`, resolving early (not rejecting) when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
