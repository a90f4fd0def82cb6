import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBufferCollector } from '../../src/node/buffer-collector.js';

const MiB = 1024 * 1024;

describe('startBufferCollector', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('collects once the buffers held pass the slack over the last low, and measures the low again after', () => {
    vi.useFakeTimers();
    let held = 100 * MiB;
    const collect = vi.fn(() => {
      held = 110 * MiB; // what survived
    });
    const collector = startBufferCollector({ slackBytes: 32 * MiB, intervalMs: 100, held: () => held, collect });
    held = 132 * MiB; // exactly the slack: not yet
    vi.advanceTimersByTime(100);
    expect(collect).not.toHaveBeenCalled();
    held = 133 * MiB;
    vi.advanceTimersByTime(100);
    expect(collect).toHaveBeenCalledTimes(1);
    // The new low is 110 MiB: 140 is under its slack.
    held = 140 * MiB;
    vi.advanceTimersByTime(100);
    expect(collect).toHaveBeenCalledTimes(1);
    // A drop V8 made on its own lowers the mark too.
    held = 60 * MiB;
    vi.advanceTimersByTime(100);
    held = 93 * MiB;
    vi.advanceTimersByTime(100);
    expect(collect).toHaveBeenCalledTimes(2);
    collector.stop();
    held = 1000 * MiB;
    vi.advanceTimersByTime(1000);
    expect(collect).toHaveBeenCalledTimes(2);
  });

  it('tries a young collection first, and runs a full one only when that left more than half the slack held', () => {
    vi.useFakeTimers();
    let held = 100 * MiB;
    let young = 0;
    const collectYoung = vi.fn(() => {
      held = young;
    });
    const collect = vi.fn(() => {
      held = 100 * MiB;
    });
    const collector = startBufferCollector({ slackBytes: 32 * MiB, intervalMs: 100, held: () => held, collect, collectYoung });
    // The dead buffers were young: freeing them is enough.
    held = 140 * MiB;
    young = 110 * MiB;
    vi.advanceTimersByTime(100);
    expect(collectYoung).toHaveBeenCalledTimes(1);
    expect(collect).not.toHaveBeenCalled();
    // Most of them outlived the young generation: the full collection runs too.
    held = 140 * MiB;
    young = 120 * MiB;
    vi.advanceTimersByTime(100);
    expect(collectYoung).toHaveBeenCalledTimes(2);
    expect(collect).toHaveBeenCalledTimes(1);
    collector.stop();
  });

  it('does nothing without a collection to run (node started without --expose-gc)', () => {
    vi.stubGlobal('gc', undefined);
    vi.useFakeTimers();
    const held = vi.fn(() => 0);
    const before = vi.getTimerCount();
    startBufferCollector({ slackBytes: 1, intervalMs: 10, held }).stop();
    expect(vi.getTimerCount()).toBe(before);
    expect(held).not.toHaveBeenCalled();
  });

  it("never keeps the process alive (its timer is unref'd)", () => {
    const timers = (): number =>
      (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((h) => h === 'Timeout').length;
    const before = timers();
    const collector = startBufferCollector({ slackBytes: 1, intervalMs: 10, held: () => 0, collect: () => {} });
    try {
      expect(timers()).toBe(before);
    } finally {
      collector.stop();
    }
  });
});
