import { describe, expect, it } from 'vitest';
import { MeasuredChunkStore } from '../../src/store/chunks/measured.js';
import { Histogram, MetricsText } from '../../src/util/metrics.js';
import { MemoryBudget } from '../../src/util/memory-budget.js';
import { renderGatewayMetrics } from '../../src/node/gateway-metrics.js';
import { GatewayStats } from '../../src/sftp/stats.js';
import { MemoryChunkStore, addressOf } from '../../src/store/index.js';

describe('Histogram', () => {
  it('renders cumulative buckets, +Inf, sum and count', () => {
    const h = new Histogram([0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    expect(h.render('x_seconds', 'op="get"')).toEqual([
      'x_seconds_bucket{op="get",le="0.1"} 1',
      'x_seconds_bucket{op="get",le="1"} 2',
      'x_seconds_bucket{op="get",le="+Inf"} 3',
      'x_seconds_sum{op="get"} 5.55',
      'x_seconds_count{op="get"} 3',
    ]);
  });

  it('escapes label values', () => {
    const text = new MetricsText().family('m', 'counter', 'help').sample('m', 1, { v: 'a"b\\c\nd' }).toString();
    expect(text).toBe('# HELP m help\n# TYPE m counter\nm{v="a\\"b\\\\c\\nd"} 1\n');
  });
});

describe('MeasuredChunkStore', () => {
  it('passes results and errors through and times each operation', async () => {
    const store = new MeasuredChunkStore(new MemoryChunkStore());
    const bytes = new TextEncoder().encode('some chunk');
    const address = await store.put(bytes);
    expect(address.equals(addressOf(bytes))).toBe(true);
    expect(await store.get(address)).toEqual(bytes);
    expect(await store.has(address)).toBe(true);
    const missing = addressOf(new TextEncoder().encode('missing'));
    await expect(store.get(missing)).rejects.toMatchObject({ name: 'NotFoundError' });
    await store.delete(address);
    expect(await store.has(address)).toBe(false);
    const listed = [];
    for await (const a of store.list()) listed.push(a);
    expect(listed).toEqual([]);

    const count = (op: 'put' | 'get' | 'has' | 'delete'): string | undefined =>
      store.latency[op].render('t', '').find((l) => l.startsWith('t_count'));
    expect(count('put')).toBe('t_count 1');
    expect(count('get')).toBe('t_count 2');
    expect(count('has')).toBe('t_count 2');
    expect(count('delete')).toBe('t_count 1');
    expect(store.errors).toEqual({ put: 0, get: 1, has: 0, delete: 0 });
    expect(store.features).toEqual({ delete: true, list: true });
  });

  it('has usage exactly when the wrapped store has it', async () => {
    expect(new MeasuredChunkStore(new MemoryChunkStore()).usage).toBeDefined();
    const inner = new MemoryChunkStore();
    Object.defineProperty(inner, 'usage', { value: undefined });
    expect(new MeasuredChunkStore(inner).usage).toBeUndefined();
  });
});

describe('renderGatewayMetrics', () => {
  it('exposes the gateway counters and store latency in Prometheus text', () => {
    const stats = new GatewayStats();
    stats.sessionsActive = 2;
    stats.sessionsTotal = 5;
    stats.loginsOk = 4;
    stats.loginsFailed = 3;
    stats.bytesIn = 100;
    stats.bytesOut = 200;
    stats.uploadsCommitted = 6;
    stats.uploadsFailed = 1;
    const text = renderGatewayMetrics(stats, new MeasuredChunkStore(new MemoryChunkStore()), 1_700_000_000_000);
    for (const line of [
      'capstan_up 1',
      'capstan_start_time_seconds 1700000000',
      'capstan_sftp_sessions_active 2',
      'capstan_sftp_sessions_total 5',
      'capstan_logins_total{result="ok"} 4',
      'capstan_logins_total{result="failed"} 3',
      'capstan_sftp_bytes_received_total 100',
      'capstan_sftp_bytes_sent_total 200',
      'capstan_uploads_total{result="committed"} 6',
      'capstan_uploads_total{result="failed"} 1',
      '# TYPE capstan_chunk_store_operation_seconds histogram',
      'capstan_chunk_store_operation_seconds_count{op="put"} 0',
      'capstan_chunk_store_errors_total{op="get"} 0',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
    // Every sample line is NAME{labels} VALUE or NAME VALUE.
    for (const line of text.trim().split('\n')) {
      if (!line.startsWith('#')) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/);
    }
  });

  it('exposes the memory budget: its bound, its use now (replies apart) and at most, its pressure', () => {
    const memory = new MemoryBudget(4 * 1024 * 1024);
    memory.charge(3 * 1024 * 1024);
    memory.release(1536 * 1024);
    expect(memory.tryAcquire(4 * 1024 * 1024)).toBe(false);
    expect(memory.tryAcquireReplies(512 * 1024)).toBe(true);
    const text = renderGatewayMetrics(undefined, new MeasuredChunkStore(new MemoryChunkStore()), 0, undefined, memory);
    for (const line of [
      'capstan_memory_budget_bytes 4194304',
      'capstan_memory_budget_used_bytes 1572864',
      'capstan_memory_budget_replies_bytes 524288',
      'capstan_memory_budget_high_water_bytes 3145728',
      'capstan_memory_budget_pressured 1',
      'capstan_memory_budget_pressure_total 1',
      'capstan_memory_budget_refused_total 1',
      '# TYPE capstan_memory_budget_pressure_total counter',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
  });
});
