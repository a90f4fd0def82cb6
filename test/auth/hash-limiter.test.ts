import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HASH_CONCURRENCY, HashLimiter } from '../../src/auth/hash-limiter.js';

describe('HashLimiter', () => {
  it('runs one check per core by default, at most 4 (each scrypt check holds 32 MiB while it runs)', () => {
    expect(DEFAULT_HASH_CONCURRENCY).toBe(Math.min(4, availableParallelism()));
    expect(new HashLimiter().concurrency).toBe(DEFAULT_HASH_CONCURRENCY);
  });

  it('runs at most `concurrency` at once, queues up to `maxQueued` in order, and sheds the rest', async () => {
    const limiter = new HashLimiter(2, 2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const gates: (() => void)[] = [];
    const task = (n: number) => () =>
      new Promise<number>((resolve) => {
        running++;
        most = Math.max(most, running);
        gates.push(() => {
          running--;
          order.push(n);
          resolve(n);
        });
      });
    const results = [1, 2, 3, 4, 5].map((n) => limiter.run(task(n)));
    expect(await results[4]).toBeUndefined(); // two running, two waiting: the fifth is shed at once
    while (order.length < 4) {
      await new Promise((r) => setImmediate(r));
      gates.shift()?.();
    }
    expect(await Promise.all(results.slice(0, 4))).toEqual([1, 2, 3, 4]);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(most).toBe(2);
  });
});
