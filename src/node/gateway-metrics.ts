import type { GatewayStats } from '../sftp/stats.js';
import { MEASURED_OPERATIONS, type MeasuredChunkStore } from '../store/chunks/measured.js';
import type { DirectoryUpdate } from '../tree/index.js';
import type { MemoryBudget } from '../util/memory-budget.js';
import { Histogram, MetricsText } from '../util/metrics.js';

/** Compare-and-swaps per directory update: 1 is no conflict; the tree gives up at 256. */
const ATTEMPT_BUCKETS = [1, 2, 3, 4, 6, 8, 16, 32, 64, 128, 256] as const;

/**
 * Contention on directory updates (issue: several gateways on one hot
 * directory): how many compare-and-swaps each update took, the longest
 * chain seen, and the updates that gave up. Fixed memory.
 */
export class DirectoryContention {
  readonly attempts = new Histogram(ATTEMPT_BUCKETS);
  longest = 0;
  gaveUp = 0;

  observe(update: DirectoryUpdate): void {
    this.attempts.observe(update.attempts);
    this.longest = Math.max(this.longest, update.attempts);
    if (!update.committed) this.gaveUp++;
  }
}

/** Metric names are part of the operator interface (docs/operations.md lists them): rename only with a note. */
export function renderGatewayMetrics(
  stats: GatewayStats | undefined,
  chunks: MeasuredChunkStore,
  startedAtMs: number,
  contention?: DirectoryContention,
  memory?: MemoryBudget,
): string {
  const m = new MetricsText();
  m.family('capstan_up', 'gauge', 'Always 1 while the gateway serves metrics.').sample('capstan_up', 1);
  m.family('capstan_start_time_seconds', 'gauge', 'Unix time the gateway started.').sample(
    'capstan_start_time_seconds',
    Math.floor(startedAtMs / 1000),
  );
  if (stats !== undefined) {
    m.family('capstan_sftp_sessions_active', 'gauge', 'SFTP sessions open now.').sample(
      'capstan_sftp_sessions_active',
      stats.sessionsActive,
    );
    m.family('capstan_sftp_sessions_total', 'counter', 'SFTP sessions opened.').sample('capstan_sftp_sessions_total', stats.sessionsTotal);
    m.family('capstan_logins_total', 'counter', 'Authentication decisions, by result.')
      .sample('capstan_logins_total', stats.loginsOk, { result: 'ok' })
      .sample('capstan_logins_total', stats.loginsFailed, { result: 'failed' });
    m.family('capstan_sftp_bytes_received_total', 'counter', 'File content bytes written by clients.').sample(
      'capstan_sftp_bytes_received_total',
      stats.bytesIn,
    );
    m.family('capstan_sftp_bytes_sent_total', 'counter', 'File content bytes read by clients.').sample(
      'capstan_sftp_bytes_sent_total',
      stats.bytesOut,
    );
    m.family('capstan_uploads_total', 'counter', 'File versions committed by CLOSE or fsync, by result.')
      .sample('capstan_uploads_total', stats.uploadsCommitted, { result: 'committed' })
      .sample('capstan_uploads_total', stats.uploadsFailed, { result: 'failed' });
  }
  m.family('capstan_chunk_store_operation_seconds', 'histogram', 'Chunk store operation latency, by operation.');
  for (const op of MEASURED_OPERATIONS) m.histogram('capstan_chunk_store_operation_seconds', chunks.latency[op], { op });
  m.family('capstan_chunk_store_errors_total', 'counter', 'Chunk store operations that failed (not found included), by operation.');
  for (const op of MEASURED_OPERATIONS) m.sample('capstan_chunk_store_errors_total', chunks.errors[op], { op });
  if (contention !== undefined) {
    m.family('capstan_directory_update_attempts', 'histogram', 'Compare-and-swaps each directory update took (1: no conflict).');
    m.histogram('capstan_directory_update_attempts', contention.attempts);
    m.family('capstan_directory_update_attempts_max', 'gauge', 'The longest retry chain of a directory update since start.').sample(
      'capstan_directory_update_attempts_max',
      contention.longest,
    );
    m.family('capstan_directory_updates_gave_up_total', 'counter', 'Directory updates that gave up after 256 conflicts.').sample(
      'capstan_directory_updates_gave_up_total',
      contention.gaveUp,
    );
  }
  if (memory !== undefined) renderMemoryBudget(m, memory);
  return m.toString();
}

/** The gateway-wide memory budget ([limits] memory_budget): its bound, its use now and at most, and its pressure. */
function renderMemoryBudget(m: MetricsText, memory: MemoryBudget): void {
  m.family('capstan_memory_budget_bytes', 'gauge', 'The gateway-wide memory budget ([limits] memory_budget).').sample(
    'capstan_memory_budget_bytes',
    memory.limit,
  );
  m.family(
    'capstan_memory_budget_used_bytes',
    'gauge',
    'Bytes of the memory budget held now (queued WRITE data, chunks beyond the first).',
  ).sample('capstan_memory_budget_used_bytes', memory.used);
  m.family(
    'capstan_memory_budget_replies_bytes',
    'gauge',
    'Bytes of the memory budget held now by replies waiting for their clients, beyond the floor each session has.',
  ).sample('capstan_memory_budget_replies_bytes', memory.replies);
  m.family(
    'capstan_memory_budget_high_water_bytes',
    'gauge',
    'The most bytes of the memory budget ever held at once since start, replies included.',
  ).sample('capstan_memory_budget_high_water_bytes', memory.highWater);
  m.family('capstan_memory_budget_pressured', 'gauge', '1 while the budget is used up and no client is read, else 0.').sample(
    'capstan_memory_budget_pressured',
    memory.pressured ? 1 : 0,
  );
  m.family('capstan_memory_budget_pressure_total', 'counter', 'Times the budget was used up and every client stopped being read.').sample(
    'capstan_memory_budget_pressure_total',
    memory.pressureEpisodes,
  );
  m.family(
    'capstan_memory_budget_refused_total',
    'counter',
    'Chunks not sealed ahead or read ahead because the budget had no room.',
  ).sample('capstan_memory_budget_refused_total', memory.refused);
}
