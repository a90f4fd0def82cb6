import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, TransientError } from '../../errors.js';

/** How often and how patiently to retry a TransientError. */
export interface RetryPolicy {
  /** Retries after the first attempt (0: no retries). */
  retries: number;
  /** Backoff cap of the first retry; doubles each retry up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 4, baseDelayMs: 100, maxDelayMs: 5_000 };

/**
 * Runs `attempt` until it succeeds, throws something other than
 * TransientError (returned at once: a 4xx, NotFoundError or IntegrityError
 * will not change by asking again), or has failed `retries + 1` times (the
 * last TransientError is thrown). Between attempts it sleeps with
 * exponential backoff and full jitter, uniform in [0, min(max, base·2^n)),
 * so that many clients failing together do not retry in lockstep (AWS
 * architecture blog, "Exponential Backoff And Jitter"). The sleep is aborted
 * by `signal`.
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
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** n);
      try {
        await sleep(Math.floor(random() * cap), undefined, signal ? { signal } : {});
      } catch {
        throw new AbortError();
      }
    }
  }
}
