import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/**
 * Gives back the JavaScript heap a burst of work grew, once the gateway is
 * quiet.
 *
 * V8 lets its heap grow to several times what is live before a full
 * collection, and keeps the pages it grew into: populating a folder to
 * 10,000 entries with 4 sessions left a demo gateway at 200 MiB RSS with
 * some 27 MB live in the heap, and it stayed there, idle, for as long as
 * it was watched. V8's own memory reducer would shrink it, but it finishes
 * its marking from a background task, which capstan's
 * `--no-incremental-marking-task` turns off (src/cli/node-flags.ts). One
 * full collection when the work stopped took the RSS from 204 to 140 MiB.
 *
 * So this samples the event loop's utilization every `intervalMs`, and once
 * it has stayed under `quietUtilization` for `quietMs` while the heap is
 * more than `growthBytes` over its size after the last collection (or the
 * least seen since), it runs one full collection (20–50 ms of the main
 * thread, once per quiet spell: the heap has to grow again before the
 * next). Unlike src/node/buffer-collector.ts, which bounds dead buffers
 * during work, it never runs while the gateway is busy.
 *
 * `collect` defaults to the `gc()` of `--expose-gc` (one of capstan's node
 * flags); without it, nothing runs. Memory: a few numbers and one timer.
 */
export interface IdleCollectorOptions {
  intervalMs: number;
  /** How long the event loop must have been quiet. */
  quietMs: number;
  /** The event loop's utilization (0–1) under which an interval counts as quiet. */
  quietUtilization: number;
  /** How far the heap must have grown past its last low for a collection to be worth it. */
  growthBytes: number;
  /** The event loop's utilization since the previous call (default: performance.eventLoopUtilization). */
  utilization?: () => number;
  /** The heap's size now (default: V8's total_heap_size). */
  heapBytes?: () => number;
  /** A full, synchronous collection (default: globalThis.gc). */
  collect?: () => void;
}

export function startIdleCollector(opts: IdleCollectorOptions): { stop(): void } {
  const collect = opts.collect ?? (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) return { stop() {} };
  const heapBytes = opts.heapBytes ?? (() => getHeapStatistics().total_heap_size);
  const utilization = opts.utilization ?? eventLoopUtilization();
  let floor = heapBytes();
  let quietFor = 0;
  const timer = setInterval(() => {
    const heap = heapBytes();
    if (heap < floor) floor = heap;
    if (utilization() >= opts.quietUtilization) {
      quietFor = 0;
      return;
    }
    quietFor += opts.intervalMs;
    if (quietFor >= opts.quietMs && heap - floor > opts.growthBytes) {
      collect();
      floor = heapBytes();
    }
  }, opts.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** The event loop's utilization since the previous call. */
function eventLoopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

/** What the gateway runs it with: after 2 s under 5 % busy, if the heap grew by more than 32 MiB. */
export const IDLE_COLLECTOR = { intervalMs: 500, quietMs: 2000, quietUtilization: 0.05, growthBytes: 32 * 1024 * 1024 } as const;
