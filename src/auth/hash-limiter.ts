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
    readonly concurrency = 4,
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
