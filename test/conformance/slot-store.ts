import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SLOT_RECORD_BYTES, MAX_SLOT_SEQ } from '../../src/store/slots/slot-limits.js';
import type { SlotEntry, SlotStore } from '../../src/store/slots/slot-store.js';

/**
 * The SlotStore contract (src/store/slots/slot-store.ts) as tests, for every
 * backend's short test file. Optional hooks turn on the tests that need to
 * reach behind the store.
 */
export interface SlotStoreConformanceOptions {
  setup(): Promise<SlotStore>;
  teardown(store: SlotStore): Promise<void>;
  /** Another client of the same backing store (the suite closes it). Enables the cross-client tests. */
  secondClient?(store: SlotStore): Promise<SlotStore>;
  /** Close `store` and open the same backing storage again. Enables the persistence test. */
  reopen?(store: SlotStore): Promise<SlotStore>;
}

const index = (): Uint8Array => new Uint8Array(randomBytes(32));
const record = (n = 200): Uint8Array => new Uint8Array(randomBytes(n));
const entry = (seq: bigint, n = 200): SlotEntry => ({ seq, record: record(n) });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const rejectsNamed = (promise: Promise<unknown>, name: string) => expect(promise).rejects.toMatchObject({ name });
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

export function slotStoreConformance(name: string, options: SlotStoreConformanceOptions): void {
  describe(`${name}: SlotStore conformance`, () => {
    let store: SlotStore;
    beforeEach(async () => {
      store = await options.setup();
    });
    afterEach(async () => {
      await options.teardown(store);
    });

    /** Exactly one of `swaps` fulfilled, every other one a ConflictError; returns the winner's position. */
    async function exactlyOneWins(swaps: Promise<void>[]): Promise<number> {
      const results = await Promise.allSettled(swaps);
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ name: 'ConflictError' });
      return winners[0]!;
    }

    it('get of a slot never written is undefined', async () => {
      expect(await store.get(index())).toBeUndefined();
    });

    it('compareAndSwap from null creates the slot; get returns it byte-exact', async () => {
      const si = index();
      const first = entry(1n);
      await store.compareAndSwap(si, null, first);
      const got = await store.get(si);
      expect(got?.seq).toBe(1n);
      expect(got?.record).toBeInstanceOf(Uint8Array);
      expect(got?.record).toEqual(first.record);
    });

    it('records round-trip byte-exact: empty, every byte value, the maximum size', async () => {
      const every = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
      for (const rec of [new Uint8Array(0), every, record(MAX_SLOT_RECORD_BYTES)]) {
        const si = index();
        await store.compareAndSwap(si, null, { seq: 0n, record: rec });
        expect(await store.get(si)).toEqual({ seq: 0n, record: rec });
      }
    });

    it('a swap from null on an existing slot is ConflictError and changes nothing', async () => {
      const si = index();
      const first = entry(1n);
      await store.compareAndSwap(si, null, first);
      await rejectsNamed(store.compareAndSwap(si, null, entry(2n)), 'ConflictError');
      expect(await store.get(si)).toEqual(first);
    });

    it('a wrong expected seq is ConflictError and changes nothing', async () => {
      const si = index();
      const first = entry(5n);
      await store.compareAndSwap(si, null, first);
      await rejectsNamed(store.compareAndSwap(si, 4n, entry(6n)), 'ConflictError');
      await rejectsNamed(store.compareAndSwap(si, 6n, entry(7n)), 'ConflictError');
      await rejectsNamed(store.compareAndSwap(index(), 5n, entry(6n)), 'ConflictError');
      expect(await store.get(si)).toEqual(first);
    });

    it('the seq must increase: next.seq <= expected is ConflictError and changes nothing', async () => {
      const si = index();
      const first = entry(5n);
      await store.compareAndSwap(si, null, first);
      await rejectsNamed(store.compareAndSwap(si, 5n, entry(5n)), 'ConflictError');
      await rejectsNamed(store.compareAndSwap(si, 5n, entry(4n)), 'ConflictError');
      expect(await store.get(si)).toEqual(first);
    });

    it('successive swaps move the slot forward, up to the largest seq', async () => {
      const si = index();
      let expected: bigint | null = null;
      for (const seq of [0n, 1n, 2n, 1000n, 2n ** 32n, MAX_SLOT_SEQ]) {
        const next = entry(seq);
        await store.compareAndSwap(si, expected, next);
        expect(await store.get(si)).toEqual(next);
        expected = seq;
      }
    });

    it('bad shapes are InvalidInputError and change nothing', async () => {
      const si = index();
      const first = entry(1n);
      await store.compareAndSwap(si, null, first);
      await rejectsNamed(store.get(new Uint8Array(31)), 'InvalidInputError');
      await rejectsNamed(store.compareAndSwap(new Uint8Array(33), null, entry(1n)), 'InvalidInputError');
      await rejectsNamed(store.compareAndSwap(si, 1n, { seq: MAX_SLOT_SEQ + 1n, record: record() }), 'InvalidInputError');
      await rejectsNamed(store.compareAndSwap(si, -1n, entry(2n)), 'InvalidInputError');
      await rejectsNamed(store.compareAndSwap(si, 1n, entry(2n, MAX_SLOT_RECORD_BYTES + 1)), 'InvalidInputError');
      expect(await store.get(si)).toEqual(first);
    });

    it('of 20 concurrent swaps from the same expected seq exactly one wins', async () => {
      const si = index();
      const fromNull = Array.from({ length: 20 }, (_, i) => entry(BigInt(i + 1)));
      const won = await exactlyOneWins(fromNull.map((next) => store.compareAndSwap(si, null, next)));
      expect(await store.get(si)).toEqual(fromNull[won]);

      const base = fromNull[won]!.seq;
      const fromSeq = Array.from({ length: 20 }, () => entry(base + 1n));
      const wonAgain = await exactlyOneWins(fromSeq.map((next) => store.compareAndSwap(si, base, next)));
      expect(await store.get(si)).toEqual(fromSeq[wonAgain]);
    });

    it('concurrent swaps on different slots all succeed', async () => {
      const slots = Array.from({ length: 20 }, () => ({ si: index(), next: entry(1n) }));
      await Promise.all(slots.map(({ si, next }) => store.compareAndSwap(si, null, next)));
      for (const { si, next } of slots) expect(await store.get(si)).toEqual(next);
    });

    it('list yields every storage index exactly once, byte-exact', async () => {
      expect(await collect(store.list())).toEqual([]);
      // More than one page of the socket protocol (256), to cross a page boundary.
      const written = Array.from({ length: 300 }, index);
      await Promise.all(written.map((si) => store.compareAndSwap(si, null, entry(1n, 8))));
      await store.compareAndSwap(written[0]!, 1n, entry(2n, 8)); // updated, still listed once
      const listed = await collect(store.list());
      expect(listed).toHaveLength(written.length);
      for (const si of listed) expect(si).toBeInstanceOf(Uint8Array);
      expect(new Set(listed.map(hex))).toEqual(new Set(written.map(hex)));
    });

    it('a list abandoned early leaves the store usable', async () => {
      const written = Array.from({ length: 300 }, index);
      await Promise.all(written.map((si) => store.compareAndSwap(si, null, entry(1n, 8))));
      for (let round = 0; round < 6; round++) {
        for await (const si of store.list()) {
          expect(si).toHaveLength(32);
          break;
        }
      }
      expect(await collect(store.list())).toHaveLength(300);
    });

    it('owns its bytes: mutating a swapped or returned record changes nothing stored', async () => {
      const si = index();
      const next = entry(1n);
      const original = next.record.slice();
      await store.compareAndSwap(si, null, next);
      next.record.fill(0);
      const got = await store.get(si);
      expect(got?.record).toEqual(original);
      got!.record.fill(1);
      expect((await store.get(si))?.record).toEqual(original);
    });

    it('every method throws AbortError for an aborted signal, and an aborted swap changes nothing', async () => {
      const si = index();
      const first = entry(1n);
      await store.compareAndSwap(si, null, first);
      const controller = new AbortController();
      controller.abort();
      const signal = controller.signal;
      await rejectsNamed(store.get(si, { signal }), 'AbortError');
      await rejectsNamed(store.compareAndSwap(si, 1n, entry(2n), { signal }), 'AbortError');
      await rejectsNamed(collect(store.list({ signal })), 'AbortError');
      expect(await store.get(si)).toEqual(first);
    });

    it('a second client sees the first one’s writes, and swaps race fairly across clients', async (ctx) => {
      if (!options.secondClient) ctx.skip();
      const other = await options.secondClient!(store);
      try {
        const si = index();
        const first = entry(1n);
        await store.compareAndSwap(si, null, first);
        expect(await other.get(si)).toEqual(first);
        const second = entry(2n);
        await other.compareAndSwap(si, 1n, second);
        expect(await store.get(si)).toEqual(second);
        const contenders = Array.from({ length: 20 }, () => entry(3n));
        const won = await exactlyOneWins(contenders.map((next, i) => (i % 2 ? other : store).compareAndSwap(si, 2n, next)));
        expect(await other.get(si)).toEqual(contenders[won]);
        expect((await collect(other.list())).map(hex)).toEqual([hex(si)]);
      } finally {
        await other.close();
      }
    });

    it('slots survive closing and reopening the store', async (ctx) => {
      if (!options.reopen) ctx.skip();
      const si = index();
      const first = entry(7n);
      await store.compareAndSwap(si, null, first);
      store = await options.reopen!(store);
      expect(await store.get(si)).toEqual(first);
    });
  });
}
