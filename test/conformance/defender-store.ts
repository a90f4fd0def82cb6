import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ClientRecord, DefenderStore } from '../../src/defender/index.js';

/**
 * The DefenderStore contract (src/defender/store.ts) as tests, for every
 * backend's short test file. Optional hooks turn on the tests that need a
 * second client of the same backing store or a reopen.
 */
export interface DefenderStoreConformanceOptions {
  setup(): Promise<DefenderStore>;
  teardown(store: DefenderStore): Promise<void>;
  /** Another client of the same backing store (the suite closes it). Enables the cross-client tests. */
  secondClient?(store: DefenderStore): Promise<DefenderStore>;
  /** Close `store` and open the same backing storage again. Enables the persistence test. */
  reopen?(store: DefenderStore): Promise<DefenderStore>;
}

const NOW = 1_700_000_000_000;
let counter = 0;
/** A key no other test uses (stores may be shared across tests). */
const freshKey = (): string => `198.51.${(counter >> 8) & 255}.${counter++ & 255}`;

function record(over: Partial<ClientRecord> = {}): ClientRecord {
  return {
    events: [{ at: NOW - 5, points: 1 }],
    bannedUntil: 0,
    offences: 0,
    lastSeen: NOW,
    forgetAt: NOW + 60_000,
    ...over,
  };
}
const banned = (until: number, over: Partial<ClientRecord> = {}): ClientRecord =>
  record({ events: [], bannedUntil: until, offences: 1, forgetAt: until + 86_400_000, ...over });

const rejectsNamed = (promise: Promise<unknown>, name: string) => expect(promise).rejects.toMatchObject({ name });

export function defenderStoreConformance(name: string, options: DefenderStoreConformanceOptions): void {
  describe(`${name}: DefenderStore conformance`, () => {
    let store: DefenderStore;
    beforeEach(async () => {
      store = await options.setup();
    });
    afterEach(async () => {
      await options.teardown(store);
    });

    it('get of a key never written is undefined', async () => {
      expect(await store.get(freshKey())).toBeUndefined();
    });

    it('put from undefined creates version 1; get returns the record as written', async () => {
      const key = freshKey();
      const r = record({
        events: [
          { at: NOW - 30, points: 2 },
          { at: NOW - 1, points: 100_000 },
        ],
        offences: 3,
        bannedUntil: NOW - 1000,
      });
      expect(await store.put(key, undefined, r)).toBe(1);
      expect(await store.get(key)).toEqual({ version: 1, record: r });
    });

    it('each put moves the version on by one; a stale or missing version is ConflictError and changes nothing', async () => {
      const key = freshKey();
      await store.put(key, undefined, record());
      const second = record({ lastSeen: NOW + 1 });
      expect(await store.put(key, 1, second)).toBe(2);
      await rejectsNamed(store.put(key, 1, record({ lastSeen: NOW + 2 })), 'ConflictError');
      await rejectsNamed(store.put(key, undefined, record({ lastSeen: NOW + 3 })), 'ConflictError');
      await rejectsNamed(store.put(freshKey(), 1, record()), 'ConflictError');
      expect(await store.get(key)).toEqual({ version: 2, record: second });
    });

    it('of racing puts from one version exactly one succeeds', async () => {
      const key = freshKey();
      await store.put(key, undefined, record());
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.put(key, 1, record({ lastSeen: NOW + i }))));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ name: 'ConflictError' });
      expect((await store.get(key))?.version).toBe(2);
    });

    it('records handed out are copies', async () => {
      const key = freshKey();
      const r = record();
      await store.put(key, undefined, r);
      r.events.push({ at: NOW, points: 9 });
      const got = await store.get(key);
      got!.record.events.length = 0;
      expect((await store.get(key))?.record.events).toEqual([{ at: NOW - 5, points: 1 }]);
    });

    it('delete removes a record and says whether there was one', async () => {
      const key = freshKey();
      await store.put(key, undefined, record());
      expect(await store.delete(key)).toBe(true);
      expect(await store.get(key)).toBeUndefined();
      expect(await store.delete(key)).toBe(false);
      // A deleted key starts again from version 1.
      expect(await store.put(key, undefined, record())).toBe(1);
    });

    it('bans lists the records banned at now, latest-ending first, at most limit', async () => {
      const keys = [freshKey(), freshKey(), freshKey(), freshKey()];
      await store.put(keys[0]!, undefined, banned(NOW + 1000));
      await store.put(keys[1]!, undefined, banned(NOW + 3000, { offences: 2 }));
      await store.put(keys[2]!, undefined, banned(NOW - 1)); // ended
      await store.put(keys[3]!, undefined, record());
      const mine = (list: { key: string }[]) => list.filter((b) => keys.includes(b.key));
      expect(mine(await store.bans(NOW, 100))).toEqual([
        { key: keys[1], bannedUntil: NOW + 3000, offences: 2 },
        { key: keys[0], bannedUntil: NOW + 1000, offences: 1 },
      ]);
      expect(mine(await store.bans(NOW + 1000, 100)).map((b) => b.key)).toEqual([keys[1]]);
      expect(await store.bans(NOW, 1)).toHaveLength(1);
    });

    it('the generation moves when a banned record is written or a record deleted', async () => {
      const key = freshKey();
      const g0 = await store.generation();
      expect(typeof g0).toBe('string');
      await store.put(key, undefined, banned(NOW + 1000));
      const g1 = await store.generation();
      expect(g1).not.toBe(g0);
      await store.delete(key);
      expect(await store.generation()).not.toBe(g1);
    });

    it('sweep deletes forgettable records, then keeps the bound: least recently seen unbanned first, bans last', async () => {
      // Start from an empty store: sweep everything another test left (all forgettable far in the future).
      await store.sweep(Number.MAX_SAFE_INTEGER, 1_000_000);
      const old = freshKey();
      await store.put(old, undefined, record({ forgetAt: NOW - 1, lastSeen: NOW - 100_000 }));
      const ban1 = freshKey();
      const quiet = freshKey();
      const ban2 = freshKey();
      const recent = freshKey();
      await store.put(ban1, undefined, banned(NOW + 10_000, { lastSeen: NOW - 4 }));
      await store.put(quiet, undefined, record({ lastSeen: NOW - 3 }));
      await store.put(ban2, undefined, banned(NOW + 10_000, { lastSeen: NOW - 2 }));
      await store.put(recent, undefined, record({ lastSeen: NOW - 1 }));
      expect(await store.sweep(NOW, 100)).toBe(1);
      expect(await store.get(old)).toBeUndefined();
      expect(await store.size()).toBe(4);
      expect(await store.sweep(NOW, 3)).toBe(1);
      expect(await store.get(quiet)).toBeUndefined();
      expect(await store.sweep(NOW, 2)).toBe(1);
      expect(await store.get(recent)).toBeUndefined();
      expect(await store.sweep(NOW, 1)).toBe(1);
      expect(await store.get(ban1)).toBeUndefined();
      expect((await store.get(ban2))?.record.bannedUntil).toBe(NOW + 10_000);
      expect(await store.size()).toBe(1);
    });

    it('refuses an empty or overlong key with InvalidInputError', async () => {
      await rejectsNamed(store.get(''), 'InvalidInputError');
      await rejectsNamed(store.put('x'.repeat(101), undefined, record()), 'InvalidInputError');
    });

    it('honours an aborted signal', async () => {
      const controller = new AbortController();
      controller.abort();
      await rejectsNamed(store.get(freshKey(), { signal: controller.signal }), 'AbortError');
    });

    if (options.reopen !== undefined) {
      const reopen = options.reopen;
      it('keeps records and versions across a reopen', async () => {
        const key = freshKey();
        const banKey = freshKey();
        await store.put(key, undefined, record());
        await store.put(key, 1, record({ lastSeen: NOW + 7 }));
        await store.put(banKey, undefined, banned(NOW + 5000));
        store = await reopen(store);
        expect(await store.get(key)).toEqual({ version: 2, record: record({ lastSeen: NOW + 7 }) });
        expect((await store.bans(NOW, 100)).map((b) => b.key)).toContain(banKey);
      });
    }

    if (options.secondClient !== undefined) {
      const secondClient = options.secondClient;
      it('a second client sees every write at once, and racing clients never both win', async () => {
        const other = await secondClient(store);
        try {
          const key = freshKey();
          await store.put(key, undefined, banned(NOW + 5000));
          expect((await other.get(key))?.version).toBe(1);
          expect((await other.bans(NOW, 100)).map((b) => b.key)).toContain(key);
          const g = await other.generation();
          const results = await Promise.allSettled([store.put(key, 1, record()), other.put(key, 1, record({ lastSeen: NOW + 1 }))]);
          expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
          await store.delete(key);
          expect(await other.get(key)).toBeUndefined();
          expect(await other.generation()).not.toBe(g);
        } finally {
          await other.close();
        }
      });
    }
  });
}
