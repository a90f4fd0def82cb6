import { afterEach, describe, expect, it, vi } from 'vitest';
import { startIdleCollector } from '../../src/node/idle-collector.js';

const MiB = 1024 * 1024;
const OPTIONS = { intervalMs: 500, quietMs: 2000, quietUtilization: 0.05, growthBytes: 32 * MiB } as const;

describe('startIdleCollector', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('collects once the event loop has been quiet for quietMs with the heap grown past the slack, and once per quiet spell', () => {
    vi.useFakeTimers();
    let heap = 30 * MiB;
    let busy = 0.6;
    const collect = vi.fn(() => {
      heap = 40 * MiB; // what was live
    });
    const collector = startIdleCollector({ ...OPTIONS, utilization: () => busy, heapBytes: () => heap, collect });
    heap = 120 * MiB;
    vi.advanceTimersByTime(5000); // busy: never
    expect(collect).not.toHaveBeenCalled();
    busy = 0.01;
    vi.advanceTimersByTime(1500); // quiet, not yet long enough
    expect(collect).not.toHaveBeenCalled();
    vi.advanceTimersByTime(500);
    expect(collect).toHaveBeenCalledTimes(1);
    // Still quiet, the heap where the collection left it: nothing more to give back.
    vi.advanceTimersByTime(10_000);
    expect(collect).toHaveBeenCalledTimes(1);
    // Work grows the heap again; the next quiet spell collects again.
    busy = 0.9;
    heap = 100 * MiB;
    vi.advanceTimersByTime(1000);
    busy = 0;
    vi.advanceTimersByTime(2000);
    expect(collect).toHaveBeenCalledTimes(2);
    collector.stop();
  });

  it('leaves a heap that did not grow past the slack over its last low alone', () => {
    vi.useFakeTimers();
    let heap = 80 * MiB;
    const collect = vi.fn();
    const collector = startIdleCollector({ ...OPTIONS, utilization: () => 0, heapBytes: () => heap, collect });
    heap = 50 * MiB; // V8 shrank it: the new low
    vi.advanceTimersByTime(500);
    heap = 82 * MiB; // 80 was the start, but 50 is the low now: exactly the slack, not past it
    vi.advanceTimersByTime(5000);
    expect(collect).not.toHaveBeenCalled();
    heap = 83 * MiB;
    vi.advanceTimersByTime(500);
    expect(collect).toHaveBeenCalledTimes(1);
    collector.stop();
  });

  it('does nothing without a collection to run (node started without --expose-gc), and never keeps the process alive', () => {
    vi.stubGlobal('gc', undefined);
    const heap = vi.fn(() => 0);
    const timers = (): number =>
      (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo().filter((h) => h === 'Timeout').length;
    const before = timers();
    startIdleCollector({ ...OPTIONS, heapBytes: heap }).stop();
    expect(heap).not.toHaveBeenCalled();
    const running = startIdleCollector({ ...OPTIONS, heapBytes: () => 0, collect: () => {} });
    try {
      expect(timers()).toBe(before);
    } finally {
      running.stop();
    }
  });
});
