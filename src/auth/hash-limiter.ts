import { availableParallelism } from 'node:os';

/**
 * Password checks run at once by default: one per core, at most 4. A check
 * is CPU work (about 100 ms of scrypt at the default cost), so more of them
 * than cores finish no sooner, and each holds its 32 MiB while it runs:
 * 8 OpenSSH clients logging in with a password at once raised a demo
 * gateway's peak RSS from 89 to 217 MiB with 4 at once on a 2-core machine.
 */
export const DEFAULT_HASH_CONCURRENCY = Math.min(4, Math.max(1, availableParallelism()));

/**
 * Bounds the password checks in flight. Each scrypt check holds 32 MiB (at the
 * default cost) on a libuv pool thread; without a bound, a flood of password
 * attempts queues unbounded work and memory. Up to `concurrency` run, up to
 * `maxQueued` wait; beyond that `run` answers `undefined` at once and the
 * caller denies the login (load shedding, logged by the caller).
 */
export class HashLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly concurrency = DEFAULT_HASH_CONCURRENCY,
    readonly maxQueued = 256,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T | undefined> {
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.maxQueued) return undefined;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      // Hand the slot straight to the next waiter, so `active` never dips and
      // a newcomer cannot overtake the queue.
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.active--;
    }
  }
}
