import { describe, expect, it } from 'vitest';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { createTree, HOUR_MS, isScheduledTime } from '../../src/tree/index.js';
import { expired, SnapshotSchedule, type Retention } from '../../src/node/snapshot-schedule.js';

const DAY = 24 * HOUR_MS;
const keep: Retention = { hourly: 24, daily: 14, weekly: 8 };

describe('scheduled snapshots', () => {
  it('one of two gateways on one slot store takes each period, for every root once', async () => {
    const slots = new MemorySlotStore();
    const chunks = new MemoryChunkStore();
    let now = Date.UTC(2026, 11, 2, 3, 0, 10);
    const trees = [createTree({ chunks, slots }), createTree({ chunks, slots })];
    const roots = [await trees[0]!.createDirectory(), await trees[0]!.createDirectory()];
    const schedules = trees.map(
      (tree) => new SnapshotSchedule({ tree, slots, every: 'hourly', keep, roots: () => [...roots, roots[0]!], now: () => now }),
    );
    const first = await Promise.all(schedules.map((s) => s.runDue()));
    expect(first.filter((r) => r !== undefined)).toEqual([{ period: Date.UTC(2026, 11, 2, 3), taken: 2, removed: 0, failed: 0 }]);
    expect(await schedules[0]!.runDue()).toBeUndefined();
    now += HOUR_MS;
    expect((await schedules[1]!.runDue())?.taken).toBe(2);
    for (const root of roots) {
      const listed = await trees[0]!.listSnapshots(root);
      expect(listed.map((s) => s.createdMs)).toEqual([Date.UTC(2026, 11, 2, 3), Date.UTC(2026, 11, 2, 4)]);
    }
  });

  it('over 40 days hourly, keeps the last 24 hours, one per day for 14 days and one per week for 8 weeks; never a manual one', async () => {
    const slots = new MemorySlotStore();
    const tree = createTree({ chunks: new MemoryChunkStore(), slots });
    const root = await tree.createDirectory();
    const start = Date.UTC(2026, 9, 1);
    let now = start;
    const changes: string[] = [];
    const schedule = new SnapshotSchedule({
      tree,
      slots,
      every: 'hourly',
      keep,
      roots: () => [root],
      now: () => now,
      onChange: async (c) => void changes.push(`${c.operation} ${c.name}`),
    });
    const manual = await tree.createSnapshot(root);
    for (let hour = 0; hour < 40 * 24; hour++, now += HOUR_MS) await schedule.runDue();
    // One event per snapshot taken, one per snapshot removed, named as /.snapshots/ shows them.
    expect(changes.filter((c) => c.startsWith('snapshot-create'))).toHaveLength(40 * 24);
    expect(changes[0]).toBe('snapshot-create 2026-10-01T00:00:00Z');
    expect(changes.filter((c) => c.startsWith('snapshot-remove'))).toHaveLength(40 * 24 - (24 + 13 + 4));
    const left = await tree.listSnapshots(root);
    expect(left.map((s) => s.epoch)).toContain(manual.epoch);
    const scheduled = left.filter((s) => isScheduledTime(s.createdMs)).map((s) => s.createdMs);
    const last = now - HOUR_MS;
    for (let h = 0; h < 24; h++) expect(scheduled).toContain(last - h * HOUR_MS);
    const days = new Set(scheduled.map((ms) => Math.floor(ms / DAY)));
    for (let d = 0; d < 14; d++) expect(days).toContain(Math.floor(last / DAY) - d);
    expect(scheduled.length).toBeLessThanOrEqual(24 + 14 + 8);
    expect(scheduled.length).toBe(new Set([...scheduled]).size);
    expect(scheduled.length).toBe(24 + 13 + 4); // today's newest is in the 24 hours; 40 days reach 6 weeks, 2 inside the 14 days
  });

  it('expired keeps the newest of each bucket and ignores manual snapshots', () => {
    const cap = undefined as never;
    const at = (ms: number) => ({ cap, epoch: BigInt(ms), createdMs: ms });
    const t = Date.UTC(2026, 11, 7); // a Monday
    const all = [at(t - 3 * HOUR_MS), at(t - 2 * HOUR_MS), at(t - HOUR_MS), at(t - HOUR_MS + 5), at(t)];
    expect(expired(all, { hourly: 1, daily: 0, weekly: 0 }).map((s) => s.createdMs)).toEqual([
      t - HOUR_MS,
      t - 2 * HOUR_MS,
      t - 3 * HOUR_MS,
    ]);
    // t - 1 h is Sunday: the newest of the previous week and of the previous day.
    expect(expired(all, { hourly: 0, daily: 2, weekly: 0 }).map((s) => s.createdMs)).toEqual([t - 2 * HOUR_MS, t - 3 * HOUR_MS]);
    expect(expired(all, { hourly: 0, daily: 0, weekly: 2 }).map((s) => s.createdMs)).toEqual([t - 2 * HOUR_MS, t - 3 * HOUR_MS]);
  });
});
