import { AbortError, TransientError } from '../errors.js';

/**
 * The one backoff capstan uses, wherever it waits to try again: event sinks,
 * S3 requests, directory compare-and-swap retries, lock waits.
 *
 * The delay before retry number `attempt` (0-based) is initialMs·2^attempt,
 * capped at maxMs, then drawn uniformly from its upper half ("equal
 * jitter"): clients that failed together do not retry in lockstep, and a
 * retry never comes much sooner than the schedule says.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return cap / 2 + random() * (cap / 2);
}

/** Sleeps `ms`; an abort of `signal` ends the sleep early with AbortError. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Sleeps `ms`, resolving early (not rejecting) when `signal` aborts: for loops that check the signal themselves. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => undefined);
}

/** How often and how patiently to retry a TransientError. */
export interface RetryPolicy extends BackoffPolicy {
  /** Retries after the first attempt (0: no retries). */
  retries: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 4, initialMs: 100, maxMs: 5_000 };

/**
 * Runs `attempt` until it succeeds, throws something other than
 * TransientError (returned at once: a 4xx, NotFoundError or IntegrityError
 * will not change by asking again), or has failed `retries + 1` times (the
 * last TransientError is thrown), sleeping backoffDelay between attempts.
 * An abort of `signal` during a sleep is AbortError.
 */
export async function withRetry<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  signal?: AbortSignal,
  random: () => number = Math.random,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!(err instanceof TransientError) || n >= policy.retries) throw err;
      await sleep(backoffDelay(n, policy, random), signal);
    }
  }
}
