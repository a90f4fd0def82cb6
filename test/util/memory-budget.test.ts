import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../../src/util/memory-budget.js';

const MiB = 1024 * 1024;
const KiB = 1024;

describe('MemoryBudget', () => {
  it('counts what is charged and acquired until it is released, and keeps the high-water mark', () => {
    const budget = new MemoryBudget(4 * MiB);
    budget.charge(300 * KiB);
    expect(budget.tryAcquire(1 * MiB)).toBe(true);
    expect(budget.used).toBe(300 * KiB + MiB);
    budget.release(300 * KiB);
    budget.release(MiB);
    expect(budget.used).toBe(0);
    expect(budget.highWater).toBe(300 * KiB + MiB);
    expect(() => budget.release(1)).toThrow();
  });

  it('refuses an optional acquisition that would pass the limit less the headroom, and counts the refusal', () => {
    const budget = new MemoryBudget(4 * MiB, { headroom: 512 * KiB });
    expect(budget.optionalUpTo).toBe(4 * MiB - 512 * KiB);
    expect(budget.tryAcquire(3 * MiB)).toBe(true);
    expect(budget.tryAcquire(512 * KiB + 1)).toBe(false);
    expect(budget.refused).toBe(1);
    expect(budget.used).toBe(3 * MiB);
    expect(budget.tryAcquire(512 * KiB)).toBe(true);
    expect(budget.highWater).toBeLessThanOrEqual(budget.limit);
  });

  it('starts pressure above half the limit and ends it at a quarter, telling every watcher each time', () => {
    const budget = new MemoryBudget(4 * MiB);
    const seen: string[] = [];
    const unwatch = ['a', 'b', 'c'].map((name) => budget.watch((p) => seen.push(`${name}:${p}`)));
    budget.charge(2 * MiB);
    expect(budget.pressured).toBe(false);
    budget.charge(1);
    expect(budget.pressured).toBe(true);
    expect(seen).toEqual(['a:true', 'b:true', 'c:true']);
    budget.release(MiB);
    expect(budget.pressured).toBe(true);
    budget.release(MiB + 1);
    expect(budget.pressured).toBe(false);
    expect(seen.slice(3)).toEqual(['a:false', 'b:false', 'c:false']);
    expect(budget.pressureEpisodes).toBe(1);
    unwatch[1]!();
    budget.charge(3 * MiB);
    expect(seen.slice(6)).toEqual(['a:true', 'c:true']);
  });

  it('lets optional work go on under pressure: it is what drains the queue', () => {
    const budget = new MemoryBudget(8 * MiB);
    budget.charge(5 * MiB);
    expect(budget.pressured).toBe(true);
    expect(budget.tryAcquire(2 * MiB)).toBe(true);
  });

  it('never lets what waits for a client start pressure, nor take anything under it', () => {
    const budget = new MemoryBudget(4 * MiB);
    budget.charge(MiB + 512 * KiB);
    // 1.5 MiB + 1 MiB would pass the pressure mark (2 MiB): refused, though under optionalUpTo.
    expect(budget.tryAcquire(MiB, { belowPressure: true })).toBe(false);
    expect(budget.tryAcquire(512 * KiB, { belowPressure: true })).toBe(true);
    budget.charge(1);
    expect(budget.pressured).toBe(true);
    budget.release(MiB);
    expect(budget.pressured).toBe(true);
    expect(budget.tryAcquire(1, { belowPressure: true })).toBe(false);
  });

  it('holds replies apart: up to their share, within the limit with the rest, never starting pressure', () => {
    const budget = new MemoryBudget(4 * MiB);
    // Half the limit less the headroom (512 KiB).
    expect(budget.repliesUpTo).toBe(1.5 * MiB);
    expect(budget.tryAcquireReplies(1.5 * MiB + 1)).toBe(false);
    expect(budget.tryAcquireReplies(1.5 * MiB)).toBe(true);
    expect(budget.replies).toBe(1.5 * MiB);
    expect(budget.used).toBe(0);
    expect(budget.pressured).toBe(false);
    // Optional work counts them towards the limit, but pressure and what waits for a client do not.
    expect(budget.tryAcquire(2.5 * MiB)).toBe(false);
    expect(budget.tryAcquire(MiB, { belowPressure: true })).toBe(true);
    expect(budget.highWater).toBe(2.5 * MiB);
    budget.charge(MiB + 1);
    expect(budget.pressured).toBe(true);
    expect(budget.tryAcquireReplies(1)).toBe(false);
    budget.releaseReplies(1.5 * MiB);
    expect(budget.replies).toBe(0);
    // Pressure is about `used` only: giving replies back does not end it.
    expect(budget.pressured).toBe(true);
    expect(() => budget.releaseReplies(1)).toThrow(/more replies released/);
  });

  /**
   * A model of the gateway: sessions read only while the budget is not
   * under pressure, and each request they read is charged until a consumer
   * that needs nothing from the budget has taken it (a file writer with its
   * guaranteed minimum); consumers take optional extra depth when offered.
   * With a budget far smaller than all the sessions want at once, every
   * session still gets all its requests through, and the budget never holds
   * more than its limit.
   */
  it('never deadlocks when many sessions each hold part of it, and serves every one of them', async () => {
    const budget = new MemoryBudget(4 * MiB);
    const sessions = 40;
    const requestsEach = 60;
    const packet = 255 * KiB;
    const done = new Array<number>(sessions).fill(0);
    const queues: number[][] = Array.from({ length: sessions }, () => []);
    let reading = !budget.pressured;
    budget.watch((p) => (reading = !p));
    const sent = new Array<number>(sessions).fill(0);
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

    // One "event loop turn": each session that may read receives one request (sessions take turns:
    // whoever is first changes every round, as socket readiness does); each consumer handles one
    // queued request, plus one more when the budget lends it extra depth.
    for (let round = 0; done.some((n) => n < requestsEach); round++) {
      expect(round).toBeLessThan(100_000);
      for (let k = 0; k < sessions; k++) {
        const s = (k + round) % sessions;
        if (!reading || sent[s]! >= requestsEach) continue;
        sent[s]!++;
        budget.charge(packet);
        queues[s]!.push(packet);
      }
      for (let s = 0; s < sessions; s++) {
        const extra = budget.tryAcquire(2 * MiB);
        for (let n = extra ? 2 : 1; n > 0; n--) {
          const bytes = queues[s]!.shift();
          if (bytes === undefined) break;
          budget.release(bytes);
          done[s]!++;
        }
        if (extra) budget.release(2 * MiB);
      }
      await tick();
    }
    expect(done).toEqual(new Array<number>(sessions).fill(requestsEach));
    expect(budget.used).toBe(0);
    expect(budget.highWater).toBeLessThanOrEqual(budget.limit);
    expect(budget.pressureEpisodes).toBeGreaterThan(0);
  });
});
