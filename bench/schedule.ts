/**
 * Fitting the runs into the time budget (the benchmark must finish in
 * under 10 minutes on 2 cores, and capstan's side is much slower than
 * OpenSSH's on some workloads).
 *
 * Phase 1 runs every selected workload once (its `prepare`, then run 0),
 * so every row is measured at least once whatever the budget. Phase 2 adds
 * runs 1, 2, … round-robin over the repeatable workloads, cheapest first,
 * each only if the time its first run took still fits before the deadline,
 * so a slow workload gives up its extra runs and a cheap one keeps them.
 */

export interface Workload {
  readonly name: string;
  readonly what: string;
  /** Untimed setup (generating data, populating a directory); may also measure single-shot rows. */
  prepare?(): Promise<void>;
  /** One run on every server, alternated by `run`'s parity. */
  run(run: number): Promise<void>;
  /** False for single-shot workloads (the huge file). */
  readonly repeatable: boolean;
  /** Frees local data; called once, whatever happened. */
  cleanup?(): Promise<void>;
}

export interface ScheduleOptions {
  /** Runs wanted per repeatable workload. */
  runs: number;
  /** Seconds from `startedAt` by which extra runs must end; 0: no limit. */
  budgetSeconds: number;
  /** performance.now() at the benchmark's start. */
  startedAt: number;
  log(line: string): void;
  /** Told which workload is running (for per-workload memory peaks). */
  onWorkload?(name: string): void;
}

export interface ScheduleOutcome {
  /** Runs done per workload. */
  runsDone: Record<string, number>;
  /** Extra runs left out for lack of time, per workload. */
  runsSkipped: Record<string, number>;
}

const elapsed = (o: ScheduleOptions): number => (performance.now() - o.startedAt) / 1000;

export async function runScheduled(workloads: Workload[], o: ScheduleOptions): Promise<ScheduleOutcome> {
  const runsDone: Record<string, number> = {};
  const runsSkipped: Record<string, number> = {};
  const firstRunSeconds = new Map<string, number>();
  try {
    for (const w of workloads) {
      o.onWorkload?.(w.name);
      o.log(`${w.name}: ${w.what}`);
      const started = performance.now();
      await w.prepare?.();
      const runStarted = performance.now();
      await w.run(0);
      firstRunSeconds.set(w.name, (performance.now() - runStarted) / 1000);
      runsDone[w.name] = 1;
      o.log(`${w.name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    // Cheapest first, so that a tight budget still gives most rows a second sample.
    const extra = workloads.filter((w) => w.repeatable).sort((a, b) => firstRunSeconds.get(a.name)! - firstRunSeconds.get(b.name)!);
    for (let run = 1; run < o.runs; run++) {
      for (const w of extra) {
        const need = firstRunSeconds.get(w.name)!;
        if (o.budgetSeconds > 0 && elapsed(o) + need > o.budgetSeconds) {
          runsSkipped[w.name] = (runsSkipped[w.name] ?? 0) + 1;
          o.log(
            `${w.name}: run ${run + 1} skipped (needs ~${need.toFixed(0)} s, ${Math.max(o.budgetSeconds - elapsed(o), 0).toFixed(0)} s of budget left)`,
          );
          continue;
        }
        o.log(`${w.name}: run ${run + 1}`);
        o.onWorkload?.(w.name);
        await w.run(run);
        runsDone[w.name] = (runsDone[w.name] ?? 0) + 1;
      }
    }
  } finally {
    for (const w of workloads) await w.cleanup?.().catch(() => undefined);
  }
  return { runsDone, runsSkipped };
}
