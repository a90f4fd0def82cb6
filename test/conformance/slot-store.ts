import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SLOT_RECORD_BYTES, MAX_SLOT_SEQ } from '../../src/store/slots/slot-limits.js';
import type { SlotEntry, SlotHistory, SlotStore } from '../../src/store/slots/slot-store.js';

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
  /** The backend keeps history for snapshots: the history tests run, and fail if `store.history` is missing. */
  history?: boolean;
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

    describe('history (docs/spec/snapshots.md)', () => {
      const history = (s: SlotStore): SlotHistory => {
        expect(s.history, 'this backend must keep slot history').toBeDefined();
        return s.history!;
      };
      const pinsOf = async (s: SlotStore, root?: Uint8Array) => collect(history(s).pins(root));

      it('a pin reads each slot as it was: kept versions, later slots absent, the current one unchanged', async (ctx) => {
        if (!options.history) ctx.skip();
        const h = history(store);
        const [si, later, root] = [index(), index(), index()];
        const v = [entry(1n), entry(2n), entry(3n), entry(4n)] as const;
        await store.compareAndSwap(si, null, v[0]);
        const a = await h.pin(root, 1_000);
        await store.compareAndSwap(si, 1n, v[1]);
        await store.compareAndSwap(si, 2n, v[2]);
        const b = await h.pin(root, 2_000);
        await store.compareAndSwap(si, 3n, v[3]);
        await store.compareAndSwap(later, null, entry(1n));
        expect(a.epoch).toBeGreaterThanOrEqual(1n);
        expect(b.epoch).toBeGreaterThan(a.epoch);
        expect(await h.getAt(si, a.epoch)).toEqual(v[0]);
        expect(await h.getAt(si, b.epoch)).toEqual(v[2]);
        expect(await h.getAt(later, a.epoch)).toBeUndefined();
        expect(await store.get(si)).toEqual(v[3]);
        expect(await pinsOf(store, root)).toEqual([
          { root, epoch: a.epoch, createdMs: 1_000 },
          { root, epoch: b.epoch, createdMs: 2_000 },
        ]);
        expect((await pinsOf(store)).filter((p) => hex(p.root) === hex(root))).toHaveLength(2);
        expect(await pinsOf(store, index())).toEqual([]);
      });

      it('unpin removes the point and nothing another pin needs; an unknown point is NotFoundError', async (ctx) => {
        if (!options.history) ctx.skip();
        const h = history(store);
        const [si, root] = [index(), index()];
        const v1 = entry(1n);
        const v2 = entry(2n);
        await store.compareAndSwap(si, null, v1);
        const a = await h.pin(root, 1);
        const b = await h.pin(root, 2);
        await store.compareAndSwap(si, 1n, v2);
        await store.compareAndSwap(si, 2n, entry(3n));
        expect(await h.unpin(root, a.epoch)).toBe(true);
        expect(await h.unpin(root, a.epoch)).toBe(false);
        expect(await h.unpin(index(), b.epoch)).toBe(false);
        await rejectsNamed(h.getAt(si, a.epoch), 'NotFoundError');
        expect(await h.getAt(si, b.epoch)).toEqual(v1);
        await rejectsNamed(h.getAt(si, b.epoch + 1_000_000n), 'NotFoundError');
        expect(await pinsOf(store, root)).toEqual([{ root, epoch: b.epoch, createdMs: 2 }]);
      });

      it('prune drops exactly the kept versions no pin covers any more', async (ctx) => {
        if (!options.history) ctx.skip();
        const h = history(store);
        const [si, root] = [index(), index()];
        const v = [entry(1n), entry(2n), entry(3n)] as const;
        await store.compareAndSwap(si, null, v[0]);
        const a = await h.pin(root, 1); // keeps v1 once v2 replaces it
        await store.compareAndSwap(si, 1n, v[1]);
        const b = await h.pin(root, 2); // keeps v2
        await store.compareAndSwap(si, 2n, v[2]);
        await h.prune();
        expect(await h.getAt(si, a.epoch)).toEqual(v[0]);
        expect(await h.unpin(root, a.epoch)).toBe(true);
        expect(await h.prune()).toBeGreaterThanOrEqual(1);
        expect(await h.prune()).toBe(0);
        expect(await h.getAt(si, b.epoch)).toEqual(v[1]);
        expect(await h.unpin(root, b.epoch)).toBe(true);
        expect(await h.prune()).toBeGreaterThanOrEqual(1);
        expect(await store.get(si)).toEqual(v[2]);
      });

      it('bad shapes are InvalidInputError', async (ctx) => {
        if (!options.history) ctx.skip();
        const h = history(store);
        await rejectsNamed(h.pin(new Uint8Array(31), 1), 'InvalidInputError');
        await rejectsNamed(h.pin(index(), -1), 'InvalidInputError');
        await rejectsNamed(h.getAt(index(), 0n), 'InvalidInputError');
        await rejectsNamed(h.getAt(index(), MAX_SLOT_SEQ + 1n), 'InvalidInputError');
        await rejectsNamed(h.unpin(index(), 0n), 'InvalidInputError');
      });

      it('a pin taken while swaps run splits them in two, and what it reads never changes', async (ctx) => {
        if (!options.history) ctx.skip();
        const h = history(store);
        const slots = Array.from({ length: 8 }, index);
        await Promise.all(slots.map((si) => store.compareAndSwap(si, null, entry(1n))));
        // Each slot: a chain of swaps; remember which seq had resolved before the pin was asked and
        // which started after it resolved.
        let pinAsked = false;
        let pinDone = false;
        const before = new Map<string, bigint>();
        const afterStart = new Map<string, bigint>();
        const chains = slots.map(async (si) => {
          for (let seq = 2n; seq <= 12n; seq++) {
            const startedAfter = pinDone;
            await store.compareAndSwap(si, seq - 1n, entry(seq, 40));
            if (!pinAsked) before.set(hex(si), seq);
            if (startedAfter && !afterStart.has(hex(si))) afterStart.set(hex(si), seq);
          }
        });
        await new Promise((resolve) => setImmediate(resolve));
        pinAsked = true;
        const pin = await h.pin(index(), 5);
        pinDone = true;
        await Promise.all(chains);
        for (const si of slots) {
          const seen = (await h.getAt(si, pin.epoch))!.seq;
          expect(seen).toBeGreaterThanOrEqual(before.get(hex(si)) ?? 1n);
          const firstAfter = afterStart.get(hex(si));
          if (firstAfter !== undefined) expect(seen).toBeLessThan(firstAfter);
          await store.compareAndSwap(si, 12n, entry(13n));
          expect((await h.getAt(si, pin.epoch))!.seq).toBe(seen);
        }
      });

      it('a second client sees the first one’s pins and reads at them', async (ctx) => {
        if (!options.history || !options.secondClient) ctx.skip();
        const other = await options.secondClient!(store);
        try {
          const [si, root] = [index(), index()];
          const v1 = entry(1n);
          await store.compareAndSwap(si, null, v1);
          const pin = await history(other).pin(root, 9);
          await other.compareAndSwap(si, 1n, entry(2n));
          expect(await history(store).getAt(si, pin.epoch)).toEqual(v1);
          expect(await pinsOf(store, root)).toEqual([{ root, epoch: pin.epoch, createdMs: 9 }]);
        } finally {
          await other.close();
        }
      });

      it('pins and the versions they keep survive closing and reopening the store', async (ctx) => {
        if (!options.history || !options.reopen) ctx.skip();
        const [si, root] = [index(), index()];
        const v1 = entry(1n);
        await store.compareAndSwap(si, null, v1);
        const pin = await history(store).pin(root, 3);
        await store.compareAndSwap(si, 1n, entry(2n));
        store = await options.reopen!(store);
        expect(await history(store).getAt(si, pin.epoch)).toEqual(v1);
        await store.compareAndSwap(si, 2n, entry(3n));
        const next = await history(store).pin(root, 4);
        expect(next.epoch).toBeGreaterThan(pin.epoch);
        expect((await history(store).getAt(si, next.epoch))!.seq).toBe(3n);
      });

      // A backend that keeps history beside the slots (LevelDB: one-byte prefixes, docs/spec/snapshots.md) must
      // not take a slot whose storage index starts with a prefix's byte for a pin or a kept version.
      it('slots whose storage index starts with any byte leave pins, unpin and reopening intact', async (ctx) => {
        if (!options.history) ctx.skip();
        const slots = Array.from({ length: 256 }, (_, byte) => {
          const si = index();
          si[0] = byte;
          return { si, v1: entry(1n, 16) };
        });
        for (const s of slots) await store.compareAndSwap(s.si, null, s.v1);
        const root = index();
        const pin = await history(store).pin(root, 5);
        for (const s of slots) await store.compareAndSwap(s.si, 1n, entry(2n, 16));
        const other = await history(store).pin(root, 6);
        if (options.reopen) store = await options.reopen(store);
        expect(await pinsOf(store, root)).toEqual([
          { root, epoch: pin.epoch, createdMs: 5 },
          { root, epoch: other.epoch, createdMs: 6 },
        ]);
        for (const s of slots) expect(await history(store).getAt(s.si, pin.epoch)).toEqual(s.v1);
        expect(await history(store).unpin(root, other.epoch)).toBe(true);
        expect(await history(store).unpin(root, pin.epoch)).toBe(true);
        expect(await pinsOf(store, root)).toEqual([]);
        for (const s of slots) expect((await store.get(s.si))!.seq).toBe(2n);
      });
    });
  });
}
