import { readdirSync, readFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver, performance, type IntervalHistogram } from 'node:perf_hooks';
import { Histogram, MetricsText } from '../util/metrics.js';

/**
 * The process's own figures for /metrics: memory, CPU, event-loop delay,
 * garbage collection, open file descriptors and active handles. Names follow
 * the Prometheus client conventions (`process_*` as every client library
 * exports them, `nodejs_*` as prom-client does), so existing dashboards and
 * alerts work unchanged. docs/operations.md lists them.
 *
 * Cost: one event-loop delay sampler (a libuv timer every RESOLUTION_MS) and
 * one PerformanceObserver on GC entries, both started here and stopped by
 * close(); everything else is read when /metrics is scraped. Memory is fixed
 * (one histogram per GC kind, one delay histogram).
 */

/** Sampling period of the event-loop delay monitor, ms (Node's default). */
const RESOLUTION_MS = 10;

/** GC pauses, seconds: from a 0.1 ms scavenge to a one-second full collection. */
const GC_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;

const GC_KINDS: ReadonlyMap<number, string> = new Map([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

const NS_PER_S = 1e9;

export class ProcessMetrics {
  private readonly loopDelay: IntervalHistogram;
  private readonly gc = new Map<string, Histogram>();
  private readonly observer: PerformanceObserver;

  constructor() {
    for (const kind of GC_KINDS.values()) this.gc.set(kind, new Histogram(GC_BUCKETS));
    this.loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.loopDelay.enable();
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        // Node 16+ puts the kind in `detail` (the entry's own `kind` is deprecated).
        const detail = (entry as { detail?: { kind?: number } }).detail;
        const kind = GC_KINDS.get(detail?.kind ?? -1);
        if (kind !== undefined) this.gc.get(kind)?.observe(entry.duration / 1000);
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  close(): void {
    this.observer.disconnect();
    this.loopDelay.disable();
  }

  /**
   * The exposition text. The event-loop delay figures cover the time since
   * the previous scrape (the histogram is reset here, as prom-client does),
   * so they show recent stalls rather than an average since start.
   */
  render(): string {
    const m = new MetricsText();
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    m.family('process_cpu_user_seconds_total', 'counter', 'User CPU time spent, all threads.').sample(
      'process_cpu_user_seconds_total',
      cpu.user / 1e6,
    );
    m.family('process_cpu_system_seconds_total', 'counter', 'System CPU time spent, all threads.').sample(
      'process_cpu_system_seconds_total',
      cpu.system / 1e6,
    );
    m.family('process_cpu_seconds_total', 'counter', 'User and system CPU time spent, all threads.').sample(
      'process_cpu_seconds_total',
      (cpu.user + cpu.system) / 1e6,
    );
    m.family('process_resident_memory_bytes', 'gauge', 'Resident memory size.').sample('process_resident_memory_bytes', mem.rss);
    m.family('process_start_time_seconds', 'gauge', 'Start time of the process since the Unix epoch.').sample(
      'process_start_time_seconds',
      Math.round(performance.timeOrigin / 1000),
    );
    m.family('process_uptime_seconds', 'gauge', 'Seconds since the process started.').sample('process_uptime_seconds', process.uptime());
    const fds = openFileDescriptors();
    if (fds !== undefined) m.family('process_open_fds', 'gauge', 'Open file descriptors.').sample('process_open_fds', fds);
    const maxFds = maxFileDescriptors();
    if (maxFds !== undefined) m.family('process_max_fds', 'gauge', 'Limit on open file descriptors.').sample('process_max_fds', maxFds);

    m.family('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap reserved (main thread).').sample(
      'nodejs_heap_size_total_bytes',
      mem.heapTotal,
    );
    m.family('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use (main thread).').sample('nodejs_heap_size_used_bytes', mem.heapUsed);
    m.family('nodejs_external_memory_bytes', 'gauge', 'Memory of C++ objects bound to JavaScript objects, ArrayBuffers included.').sample(
      'nodejs_external_memory_bytes',
      mem.external,
    );
    m.family('nodejs_array_buffers_bytes', 'gauge', 'Memory of ArrayBuffers and Buffers (part of external).').sample(
      'nodejs_array_buffers_bytes',
      mem.arrayBuffers,
    );

    const d = this.loopDelay;
    const seconds = (ns: number): number => (d.count > 0 ? ns / NS_PER_S : 0);
    m.family('nodejs_eventloop_lag_seconds', 'gauge', 'Mean event-loop delay since the previous scrape.').sample(
      'nodejs_eventloop_lag_seconds',
      seconds(d.mean),
    );
    const figures: [string, number][] = [
      ['min', d.min],
      ['max', d.max],
      ['stddev', d.stddev],
      ['p50', d.percentile(50)],
      ['p90', d.percentile(90)],
      ['p99', d.percentile(99)],
    ];
    for (const [name, ns] of figures) {
      const metric = `nodejs_eventloop_lag_${name}_seconds`;
      m.family(metric, 'gauge', `Event-loop delay since the previous scrape: ${name}.`).sample(metric, seconds(ns));
    }
    d.reset();

    m.family('nodejs_gc_duration_seconds', 'histogram', 'Garbage collection pauses, by kind (main thread).');
    for (const [kind, histogram] of this.gc) m.histogram('nodejs_gc_duration_seconds', histogram, { kind });

    const resources = new Map<string, number>();
    for (const type of process.getActiveResourcesInfo()) resources.set(type, (resources.get(type) ?? 0) + 1);
    m.family('nodejs_active_resources', 'gauge', 'Resources keeping the event loop alive (handles, requests, timers), by type.');
    for (const [type, n] of resources) m.sample('nodejs_active_resources', n, { type });
    m.family('nodejs_active_resources_total', 'gauge', 'Resources keeping the event loop alive.').sample(
      'nodejs_active_resources_total',
      [...resources.values()].reduce((a, b) => a + b, 0),
    );
    m.family('nodejs_version_info', 'gauge', 'Node.js version.').sample('nodejs_version_info', 1, { version: process.version });
    return m.toString();
  }
}

/** Entries of /proc/self/fd, less the one readdir itself holds; undefined where there is no /proc. */
function openFileDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

/** The soft limit from /proc/self/limits ("Max open files  1024  524288  files"). */
function maxFileDescriptors(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line === undefined ? undefined : Number(line.slice('Max open files'.length).trim().split(/\s+/)[0]);
    return soft !== undefined && Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}
