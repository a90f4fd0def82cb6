import type { ServerName } from './servers.js';

/**
 * Every target the benchmark checks, in one table: changing a target is a
 * change of one line here. The report (docs/benchmarks.md and --json) gives
 * each one's figure and whether it is met; a target whose figure could not be
 * taken (a server skipped, a workload not run) is "not measured", never met.
 *
 * Sources: issue 12 (storage engine v3: small files, large files, many
 * clients, rclone, S3) and the earlier memory, dedup and listing targets.
 */

export type Verdict = 'met' | 'not met' | 'not measured';

interface TargetBase {
  /** Where the target comes from. */
  readonly source: string;
  /** A condition besides the number, in words (checked by the report). */
  readonly also?: string;
}

/** capstan's median at least `factor` × the median of another server (a rate: more is better). */
export interface RatioTarget extends TargetBase {
  readonly kind: 'ratio';
  readonly factor: number;
  readonly of: Exclude<ServerName, 'capstan'>;
}

/** capstan's figure at most (≤) or below (<) `limit`. */
export interface LimitTarget extends TargetBase {
  readonly kind: 'limit';
  readonly compare: '≤' | '<';
  readonly limit: number;
  readonly unit: string;
}

export type Target = RatioTarget | LimitTarget;

export const TARGETS = {
  putVsOpenSsh: { kind: 'ratio', factor: 0.8, of: 'OpenSSH', source: 'issue 12' },
  putVsRclone: { kind: 'ratio', factor: 1.0, of: 'rclone', source: 'issue 12' },
  getVsOpenSsh: { kind: 'ratio', factor: 0.8, of: 'OpenSSH', source: 'issue 12' },
  getVsRclone: { kind: 'ratio', factor: 1.0, of: 'rclone', source: 'issue 12' },
  putCpuSecondsPerGiB: { kind: 'limit', compare: '≤', limit: 8, unit: 'CPU-s', source: 'issue 12' },
  getCpuSecondsPerGiB: { kind: 'limit', compare: '≤', limit: 3.5, unit: 'CPU-s', source: 'issue 12' },
  smallFilesVsOpenSsh: { kind: 'ratio', factor: 0.5, of: 'OpenSSH', source: 'issue 12' },
  smallFileCpuMs: { kind: 'limit', compare: '≤', limit: 1.5, unit: 'CPU-ms', source: 'issue 12' },
  oneMoreEntryMs: { kind: 'limit', compare: '≤', limit: 3, unit: 'ms', source: 'issue 12' },
  concurrentVsOpenSsh: { kind: 'ratio', factor: 0.8, of: 'OpenSSH', source: 'issue 12' },
  concurrentPeakRssMiB: { kind: 'limit', compare: '≤', limit: 256, unit: 'MiB', source: 'issue 12' },
  concurrentAfterRssMiB: { kind: 'limit', compare: '≤', limit: 256, unit: 'MiB', source: 'issue 12' },
  s3PutsPerSmallFile: { kind: 'limit', compare: '≤', limit: 2, unit: 'PUTs', source: 'issue 12' },
  lsSeconds: { kind: 'limit', compare: '<', limit: 1, unit: 's', source: 'listing' },
  bigPutRssMiB: { kind: 'limit', compare: '<', limit: 200, unit: 'MiB', source: 'flat memory' },
  hugePutRssMiB: { kind: 'limit', compare: '<', limit: 200, unit: 'MiB', source: 'flat memory', also: 'flat' },
  dedupPercent: { kind: 'limit', compare: '<', limit: 1, unit: '% of the file', source: 'dedup' },
  copyBigOverSmall: { kind: 'limit', compare: '≤', limit: 2, unit: '× the small copy', source: 'issue 14' },
  snapshotBigOverSmall: { kind: 'limit', compare: '≤', limit: 1.5, unit: '× the small tree', source: 'issue 14' },
} as const satisfies Record<string, Target>;

export type TargetId = keyof typeof TARGETS;

/** One target's outcome in a run. */
export interface TargetResult {
  id: TargetId;
  /** The target in words, e.g. "≥ 0.8× OpenSSH", "≤ 1.5 CPU-ms". */
  text: string;
  /** The figure compared: capstan / other for a ratio target, else capstan's figure; absent when not measured. */
  value?: number;
  verdict: Verdict;
}

export function targetText(t: Target): string {
  const text = t.kind === 'ratio' ? `≥ ${t.factor}× ${t.of}` : `${t.compare} ${t.limit} ${t.unit}`;
  return t.also !== undefined ? `${text} and ${t.also}` : text;
}

/**
 * Checks `value` (a ratio for a ratio target) against target `id`. `also` is
 * the extra condition's outcome, for a target that has one.
 */
export function checkTarget(id: TargetId, value: number | undefined, also?: boolean): TargetResult {
  const t: Target = TARGETS[id];
  const text = targetText(t);
  if (value === undefined || !Number.isFinite(value)) return { id, text, verdict: 'not measured' };
  const withinLimit = t.kind === 'ratio' ? value >= t.factor : t.compare === '≤' ? value <= t.limit : value < t.limit;
  const met = withinLimit && (t.also === undefined || also === true);
  return { id, text, value, verdict: met ? 'met' : 'not met' };
}
