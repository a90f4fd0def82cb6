import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UsageLedger } from '../../src/quota/index.js';

/**
 * The UsageLedger contract (src/quota/ledger.ts) as tests, for every
 * backend's test file. `secondClient` turns on the tests of racing adds from
 * two clients of one backing store (gateways sharing PostgreSQL).
 */
export interface UsageLedgerConformanceOptions {
  setup(): Promise<UsageLedger>;
  teardown(ledger: UsageLedger): Promise<void>;
  /** Another client of the same backing store (the suite closes it). */
  secondClient?(ledger: UsageLedger): Promise<UsageLedger>;
  /** Close `ledger` and open the same backing storage again. */
  reopen?(ledger: UsageLedger): Promise<UsageLedger>;
}

let counter = 0;
const freshUser = (): string => `user${counter++}@example.org`;

export function usageLedgerConformance(name: string, options: UsageLedgerConformanceOptions): void {
  describe(`${name}: UsageLedger conformance`, () => {
    let ledger: UsageLedger;
    beforeEach(async () => {
      ledger = await options.setup();
    });
    afterEach(async () => {
      await options.teardown(ledger);
    });

    it('an account never counted is undefined, and an add to it changes nothing', async () => {
      const user = freshUser();
      expect(await ledger.get(user)).toBeUndefined();
      expect(await ledger.add(user, 100, 1, { bytes: 10 })).toBe(true);
      expect(await ledger.get(user)).toBeUndefined();
    });

    it('adds deltas to a counted account, never below zero', async () => {
      const user = freshUser();
      await ledger.set(user, { bytes: 100, files: 2, countedAt: 1000 });
      expect(await ledger.add(user, 50, 1)).toBe(true);
      expect(await ledger.get(user)).toEqual({ bytes: 150, files: 3, countedAt: 1000 });
      expect(await ledger.add(user, -500, -7)).toBe(true);
      expect(await ledger.get(user)).toEqual({ bytes: 0, files: 0, countedAt: 1000 });
    });

    it('refuses an add that passes a limit and changes nothing; negative deltas always land', async () => {
      const user = freshUser();
      await ledger.set(user, { bytes: 90, files: 9, countedAt: 1 });
      expect(await ledger.add(user, 11, 0, { bytes: 100 })).toBe(false);
      expect(await ledger.add(user, 0, 2, { files: 10 })).toBe(false);
      expect(await ledger.add(user, 5, 2, { bytes: 100, files: 10 })).toBe(false);
      expect(await ledger.get(user)).toEqual({ bytes: 90, files: 9, countedAt: 1 });
      expect(await ledger.add(user, 10, 1, { bytes: 100, files: 10 })).toBe(true);
      expect(await ledger.add(user, -1, 0, { bytes: 50 })).toBe(true); // over the limit already: a shrink still lands
      expect(await ledger.add(user, 1, 0, {})).toBe(true);
      expect(await ledger.get(user)).toEqual({ bytes: 100, files: 10, countedAt: 1 });
    });

    it('keeps the later of two counts', async () => {
      const user = freshUser();
      await ledger.set(user, { bytes: 1, files: 1, countedAt: 2000 });
      await ledger.set(user, { bytes: 9, files: 9, countedAt: 1000 });
      expect(await ledger.get(user)).toEqual({ bytes: 1, files: 1, countedAt: 2000 });
      await ledger.set(user, { bytes: 3, files: 4, countedAt: 3000 });
      expect(await ledger.get(user)).toEqual({ bytes: 3, files: 4, countedAt: 3000 });
      await ledger.delete(user);
      expect(await ledger.get(user)).toBeUndefined();
    });

    it('of racing adds under a limit, exactly those that fit land', async () => {
      const user = freshUser();
      await ledger.set(user, { bytes: 0, files: 0, countedAt: 1 });
      const results = await Promise.all(Array.from({ length: 40 }, () => ledger.add(user, 10, 1, { bytes: 255 })));
      expect(results.filter((r) => r)).toHaveLength(25);
      expect(await ledger.get(user)).toEqual({ bytes: 250, files: 25, countedAt: 1 });
    });

    it.runIf(options.secondClient !== undefined)('two clients share the counters and the limit', async () => {
      const other = await options.secondClient!(ledger);
      try {
        const user = freshUser();
        await ledger.set(user, { bytes: 0, files: 0, countedAt: 1 });
        expect(await other.get(user)).toEqual({ bytes: 0, files: 0, countedAt: 1 });
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? ledger : other).add(user, 1, 1, { files: 17 })),
        );
        expect(results.filter((r) => r)).toHaveLength(17);
        expect(await ledger.get(user)).toEqual({ bytes: 17, files: 17, countedAt: 1 });
        expect(await other.get(user)).toEqual({ bytes: 17, files: 17, countedAt: 1 });
      } finally {
        await other.close();
      }
    });

    it.runIf(options.reopen !== undefined)('counters outlive a clean close', async () => {
      const user = freshUser();
      await ledger.set(user, { bytes: 7, files: 1, countedAt: 5 });
      await ledger.add(user, 3, 1);
      ledger = await options.reopen!(ledger);
      expect(await ledger.get(user)).toEqual({ bytes: 10, files: 2, countedAt: 5 });
    });
  });
}
