import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProcessMetrics } from '../../src/node/process-metrics.js';

let metrics: ProcessMetrics | undefined;
afterEach(() => {
  metrics?.close();
  metrics = undefined;
});

/** `name{labels} value` lines of an exposition document, by series (name plus labels). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function value(all: Map<string, number>, series: string): number {
  const v = all.get(series);
  if (v === undefined) throw new Error(`missing ${series}`);
  return v;
}

/** Keeps the event loop busy for `ms`, as a long synchronous task in the gateway would. */
function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

describe('ProcessMetrics', () => {
  it('exposes memory, CPU, uptime, descriptors and handles with sane values', () => {
    metrics = new ProcessMetrics();
    const text = metrics.render();
    const all = samples(text);
    const rss = value(all, 'process_resident_memory_bytes');
    expect(rss).toBeGreaterThan(10 * 2 ** 20);
    expect(rss).toBeLessThan(24 * 2 ** 30);
    const heapUsed = value(all, 'nodejs_heap_size_used_bytes');
    expect(heapUsed).toBeGreaterThan(0);
    expect(heapUsed).toBeLessThanOrEqual(value(all, 'nodejs_heap_size_total_bytes'));
    expect(value(all, 'nodejs_array_buffers_bytes')).toBeLessThanOrEqual(value(all, 'nodejs_external_memory_bytes'));
    const user = value(all, 'process_cpu_user_seconds_total');
    const system = value(all, 'process_cpu_system_seconds_total');
    expect(user).toBeGreaterThan(0);
    expect(value(all, 'process_cpu_seconds_total')).toBeCloseTo(user + system, 5);
    expect(value(all, 'process_uptime_seconds')).toBeGreaterThan(0);
    const start = value(all, 'process_start_time_seconds');
    expect(Math.abs(start + value(all, 'process_uptime_seconds') - Date.now() / 1000)).toBeLessThan(5);
    expect(value(all, 'process_open_fds')).toBeGreaterThan(2);
    expect(value(all, 'process_open_fds')).toBeLessThanOrEqual(value(all, 'process_max_fds'));
    expect(value(all, 'nodejs_active_resources_total')).toBeGreaterThanOrEqual(0);
    expect(value(all, `nodejs_version_info{version="${process.version}"}`)).toBe(1);
    // Each family is declared once, with its type.
    const declared = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(declared).size).toBe(declared.length);
    expect(text).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);
  });

  it('counts garbage collections by kind', async () => {
    metrics = new ProcessMetrics();
    let keep: unknown[] = [];
    await vi.waitFor(
      () => {
        // Short-lived garbage: scavenges (minor GCs) follow within a few megabytes.
        for (let i = 0; i < 20_000; i++) keep.push({ i, s: `x${i}` });
        keep = [];
        const all = samples(metrics!.render());
        expect(value(all, 'nodejs_gc_duration_seconds_count{kind="minor"}')).toBeGreaterThan(0);
        expect(value(all, 'nodejs_gc_duration_seconds_sum{kind="minor"}')).toBeGreaterThan(0);
        expect(value(all, 'nodejs_gc_duration_seconds_count{kind="major"}')).toBeGreaterThanOrEqual(0);
      },
      { timeout: 20_000, interval: 20 },
    );
  });

  it('shows a blocked event loop as delay, and starts a new window at each scrape', async () => {
    metrics = new ProcessMetrics();
    await vi.waitFor(
      async () => {
        blockFor(120);
        // Let the delay monitor's timer fire once after the block, so it records it.
        await new Promise((r) => setTimeout(r, 30));
        const all = samples(metrics!.render());
        expect(value(all, 'nodejs_eventloop_lag_max_seconds')).toBeGreaterThan(0.08);
        expect(value(all, 'nodejs_eventloop_lag_max_seconds')).toBeLessThan(60);
        expect(value(all, 'nodejs_eventloop_lag_seconds')).toBeGreaterThan(0);
        expect(value(all, 'nodejs_eventloop_lag_p99_seconds')).toBeLessThanOrEqual(value(all, 'nodejs_eventloop_lag_max_seconds'));
      },
      { timeout: 20_000, interval: 50 },
    );
    // Each render resets the window: a scrape right after another has no samples yet, so no delay.
    metrics.render();
    expect(value(samples(metrics.render()), 'nodejs_eventloop_lag_max_seconds')).toBe(0);
  });
});
