import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addressOf } from '../../src/store/address.js';
import type { Location } from '../../src/store/packs/format.js';
import type { IndexEntry, ObjectIndex } from '../../src/store/packs/index-store.js';

/**
 * The ObjectIndex contract (src/store/packs/index-store.ts) as tests, for
 * every backend's short test file: memory, LevelDB, PostgreSQL. The
 * conditional operations are raced against each other, as gc, compaction
 * and deduplicating puts on different gateways race in production.
 */
export interface ObjectIndexConformanceOptions {
  setup(): Promise<ObjectIndex>;
  teardown(index: ObjectIndex): Promise<void>;
  /** Another client of the same backing index (the suite closes it). Enables the cross-client races. */
  secondClient?(index: ObjectIndex): Promise<ObjectIndex>;
}

const pack = (): string => randomBytes(8).toString('hex');
const location = (): Location => ({
  pack: pack(),
  offset: 16 + Math.floor(Math.random() * 1e9),
  length: 1 + Math.floor(Math.random() * 1e6),
});
const entry = (lastPutSec = 1_700_000_000): IndexEntry => ({ address: addressOf(randomBytes(64)), location: location(), lastPutSec });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export function objectIndexConformance(name: string, options: ObjectIndexConformanceOptions): void {
  describe(`${name}: ObjectIndex conformance`, () => {
    let index: ObjectIndex;
    beforeEach(async () => {
      index = await options.setup();
    });
    afterEach(async () => {
      await options.teardown(index);
    });

    it('get answers undefined for an address never put, and exactly the entry put otherwise', async () => {
      expect(await index.get(addressOf(randomBytes(10)))).toBeUndefined();
      const e = entry();
      await index.putMany([e]);
      const got = await index.get(e.address);
      expect(got?.address.equals(e.address)).toBe(true);
      expect(got?.location).toEqual(e.location);
      expect(got?.lastPutSec).toBe(e.lastPutSec);
    });

    it('getMany answers what get would, in the order asked, repeats and misses included', async () => {
      const [a, b] = [entry(), entry(1_700_000_123)];
      await index.putMany([a, b]);
      const missing = addressOf(randomBytes(11));
      const got = await index.getMany([b.address, missing, a.address, b.address]);
      expect(got.length).toBe(4);
      expect(got[0]).toMatchObject({ location: b.location, lastPutSec: b.lastPutSec });
      expect(got[0]?.address.equals(b.address)).toBe(true);
      expect(got[1]).toBeUndefined();
      expect(got[2]).toMatchObject({ location: a.location, lastPutSec: a.lastPutSec });
      expect(got[3]).toMatchObject({ location: b.location });
      // Each answer is the caller's own: changing one changes neither the other nor the index.
      got[0]!.location.offset += 1;
      expect(got[3]?.location.offset).toBe(b.location.offset);
      expect((await index.get(b.address))?.location).toEqual(b.location);
      expect(await index.getMany([])).toEqual([]);
      const many = Array.from({ length: 1_100 }, () => entry());
      await index.putMany(many);
      const all = await index.getMany([...many.map((e) => e.address), missing]);
      expect(all.map((e) => e?.location)).toEqual([...many.map((e) => e.location), undefined]);
    });

    it('putMany upserts: a later put replaces location and time; an empty batch is fine', async () => {
      const e = entry();
      await index.putMany([e]);
      const moved = { ...e, location: location(), lastPutSec: e.lastPutSec + 5 };
      await index.putMany([moved]);
      await index.putMany([]);
      expect(await index.get(e.address)).toMatchObject({ location: moved.location, lastPutSec: moved.lastPutSec });
    });

    it('refreshIf sets the time only while the entry names the location', async () => {
      const e = entry();
      await index.putMany([e]);
      expect(await index.refreshIf(e.address, location(), e.lastPutSec + 9)).toBe(false);
      expect((await index.get(e.address))?.lastPutSec).toBe(e.lastPutSec);
      expect(await index.refreshIf(e.address, e.location, e.lastPutSec + 9)).toBe(true);
      expect(await index.get(e.address)).toMatchObject({ location: e.location, lastPutSec: e.lastPutSec + 9 });
      expect(await index.refreshIf(addressOf(randomBytes(9)), e.location, 1)).toBe(false);
    });

    it('removeIf deletes only the entry at that location, and with idleBeforeSec only an idle one', async () => {
      const e = entry(1000);
      await index.putMany([e]);
      expect(await index.removeIf(e.address, location())).toBe(false);
      expect(await index.removeIf(e.address, e.location, { idleBeforeSec: 1000 })).toBe(false);
      expect(await index.get(e.address)).toBeDefined();
      expect(await index.removeIf(e.address, e.location, { idleBeforeSec: 1001 })).toBe(true);
      expect(await index.get(e.address)).toBeUndefined();
      expect(await index.removeIf(e.address, e.location)).toBe(false);
      const f = entry();
      await index.putMany([f]);
      expect(await index.removeIf(f.address, f.location)).toBe(true);
    });

    it('moveIf re-points an entry that still names `from` and keeps its time', async () => {
      const e = entry(4242);
      await index.putMany([e]);
      const to = location();
      expect(await index.moveIf(e.address, location(), to)).toBe(false);
      expect(await index.moveIf(e.address, e.location, to)).toBe(true);
      expect(await index.get(e.address)).toMatchObject({ location: to, lastPutSec: 4242 });
      expect(await index.moveIf(e.address, e.location, location())).toBe(false);
      expect(await index.moveIf(addressOf(randomBytes(5)), e.location, to)).toBe(false);
    });

    it('list yields every entry once', async () => {
      const entries = Array.from({ length: 300 }, () => entry());
      await index.putMany(entries);
      const listed = await collect(index.list());
      const mine = new Set(entries.map((e) => e.address.toString()));
      const seen = listed.map((e) => e.address.toString()).filter((a) => mine.has(a));
      expect(seen.sort()).toEqual([...mine].sort());
    });

    it('an aborted signal stops every method with AbortError', async () => {
      const signal = AbortSignal.abort();
      const e = entry();
      await expect(index.get(e.address, { signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(index.getMany([e.address], { signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(index.putMany([e], { signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(index.refreshIf(e.address, e.location, 1, { signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(index.removeIf(e.address, e.location, { signal })).rejects.toMatchObject({ name: 'AbortError' });
      await expect(index.moveIf(e.address, e.location, location(), { signal })).rejects.toMatchObject({ name: 'AbortError' });
    });

    it('a refresh racing an idle removal: exactly one of them wins, and the entry agrees', async () => {
      const other = options.secondClient ? await options.secondClient(index) : index;
      try {
        for (let round = 0; round < 40; round++) {
          const e = entry(1000);
          await index.putMany([e]);
          const [refreshed, removed] = await Promise.all([
            index.refreshIf(e.address, e.location, 5000),
            other.removeIf(e.address, e.location, { idleBeforeSec: 2000 }),
          ]);
          expect(refreshed !== removed).toBe(true);
          const now = await index.get(e.address);
          if (refreshed) expect(now?.lastPutSec).toBe(5000);
          else expect(now).toBeUndefined();
        }
      } finally {
        if (other !== index) await other.close();
      }
    });

    it('a move racing a removal: never both, and a removed entry stays removed', async () => {
      const other = options.secondClient ? await options.secondClient(index) : index;
      try {
        for (let round = 0; round < 40; round++) {
          const e = entry(1000);
          await index.putMany([e]);
          const to = location();
          const [moved, removed] = await Promise.all([index.moveIf(e.address, e.location, to), other.removeIf(e.address, e.location)]);
          expect(moved && removed).toBe(false);
          const now = await index.get(e.address);
          if (removed) expect(now).toBeUndefined();
          else expect(now?.location).toEqual(moved ? to : e.location);
        }
      } finally {
        if (other !== index) await other.close();
      }
    });
  });
}
