import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildEvent, Dispatcher, Outbox, type EventSink, type StoredEvent } from '../../src/events/index.js';
import { silentLogger } from '../../src/log.js';
import { backoffDelay } from '../../src/util/backoff.js';
import { waitFor } from '../helpers/wait.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-outbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ev = (p: string) => buildEvent({ user: 'alice', operation: 'mkdir', base: 'root', path: p }, 'gw');

describe('Outbox', () => {
  it('keeps events in order across a reopen, per-sink cursors, and deletes only what every sink confirmed', async () => {
    let box = await Outbox.open(dir, { maxEvents: 100, sinks: ['a', 'b'] });
    await Promise.all(['1', '2', '3', '4'].map((p) => box.append(ev(p))));
    expect((await box.read(0n, 10)).map((e) => e.event.path)).toEqual(['1', '2', '3', '4']);
    await box.ack('a', 3n);
    expect(box.pending).toBe(4); // b has confirmed nothing
    await box.ack('b', 2n);
    expect(box.pending).toBe(2);
    await box.close();

    box = await Outbox.open(dir, { maxEvents: 100, sinks: ['a', 'b', 'c'] });
    expect(box.cursor('a')).toBe(3n);
    expect(box.cursor('b')).toBe(2n);
    expect(box.cursor('c')).toBe(2n); // a new sink starts at the oldest event still held
    expect((await box.read(box.cursor('a'), 10)).map((e) => [e.seq, e.event.path])).toEqual([[4n, '4']]);
    await box.append(ev('5'));
    expect((await box.read(2n, 10)).map((e) => e.seq)).toEqual([3n, 4n, 5n]);
    await box.close();
  });

  it('never reuses a sequence number after every event was confirmed and deleted', async () => {
    let box = await Outbox.open(dir, { maxEvents: 100, sinks: ['a'] });
    for (const p of ['1', '2', '3']) await box.append(ev(p));
    await box.ack('a', 3n);
    expect(box.pending).toBe(0);
    await box.close();
    box = await Outbox.open(dir, { maxEvents: 100, sinks: ['a'] });
    await box.append(ev('4'));
    expect(box.pending).toBe(1);
    expect((await box.read(box.cursor('a'), 10)).map((e) => [e.seq, e.event.path])).toEqual([[4n, '4']]);
    await box.close();
  });

  it('refuses with OutboxFullError at its bound, and admits again once a sink catches up', async () => {
    const box = await Outbox.open(dir, { maxEvents: 3, sinks: ['a'] });
    for (const p of ['1', '2', '3']) {
      box.admit();
      await box.append(ev(p));
    }
    expect(() => box.admit()).toThrow(expect.objectContaining({ name: 'OutboxFullError' }));
    await box.ack('a', 1n);
    expect(() => box.admit()).not.toThrow();
    await box.close();
  });

  it('the dispatcher retries a failing sink with the same event ids and never skips one', async () => {
    const box = await Outbox.open(dir, { maxEvents: 100, sinks: ['flaky'] });
    const seen: StoredEvent[] = [];
    let failures = 2;
    const sink: EventSink = {
      name: 'flaky',
      maxBatch: 2,
      async deliver(events) {
        seen.push(...events);
        if (failures-- > 0) throw new Error('down');
      },
      async close() {},
    };
    const dispatcher = new Dispatcher(box, [sink], { initialMs: 5, maxMs: 20 }, silentLogger());
    dispatcher.start();
    for (const p of ['a', 'b', 'c']) await box.append(ev(p));
    await waitFor(() => box.pending === 0);
    await dispatcher.stop();
    expect(box.pending).toBe(0);
    const ids = new Set(seen.map((s) => s.event.id));
    expect(ids.size).toBe(3);
    expect(seen.length).toBeGreaterThan(3); // the first batch went twice more
    await box.close();
  });

  it('backoff grows exponentially, is capped, and jitters within the upper half', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(1000, 10 * 2 ** attempt);
      const d = backoffDelay(attempt, { initialMs: 10, maxMs: 1000 });
      expect(d).toBeGreaterThanOrEqual(cap / 2 - 1);
      expect(d).toBeLessThanOrEqual(cap);
    }
  });
});
