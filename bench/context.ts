import { TreeCpuWindow, treeCpuAvailable } from './cpu.js';
import type { ProcessRegistry } from './procs.js';
import type { ProcRssSampler, RssWindow } from './rss.js';
import type { RequestCounts } from './counting-proxy.js';
import type { BenchServer, ServerName } from './servers.js';
import { sftpBatch, type SftpClient } from './sftp.js';
import { GiB, KiB, MiB } from './data.js';

/** What every workload gets: the servers, the one client, sizes, and where to put local data. */
export interface BenchContext {
  registry: ProcessRegistry;
  client: SftpClient;
  /** capstan first, then OpenSSH and rclone, each when it runs. */
  servers: BenchServer[];
  capstan: BenchServer;
  capstanRss: ProcRssSampler;
  sizes: BenchSizes;
  /** Local data folder (same filesystem as the servers' stores). */
  dataDir: string;
  /** Median time of a whole `pwd`-only sftp session per server, ms (reported; timings exclude it, see sftp.ts timedBatch). */
  connectMs: Map<string, number>;
  log(line: string): void;
}

export interface BenchSizes {
  runs: number;
  bigFile: number;
  hugeFile: number;
  smallFiles: number;
  smallFileSize: number;
  /** Small files put through the S3 gateway, to count its requests per file. */
  s3SmallFiles: number;
  clients: number;
  clientFile: number;
  /** Directory sizes at which one more entry is measured; the last is also the `ls -l` directory. */
  dirCheckpoints: number[];
  /**
   * Adds measured (and averaged) at each checkpoint, and in every run at the
   * last one. The time between the session's two marks includes the second
   * mark's fork and exec of date (8–9 ms on this project's machines), so
   * fewer adds would measure that more than the adds: with 20 it was some
   * 0.4 ms of each add's figure, for every server.
   */
  addsPerCheckpoint: number;
  connectSamples: number;
  /** `sftp cp` on the server of a small and a big file (capstan: the same time for both). */
  copySmall: number;
  copyBig: number;
  /** Files in the bigger tree of the snapshot workload; the other has a tenth of them. */
  snapshotFiles: number;
}

export const FULL_SIZES: BenchSizes = {
  runs: 3,
  bigFile: 1 * GiB,
  hugeFile: 4 * GiB,
  smallFiles: 2000,
  smallFileSize: 16 * KiB,
  s3SmallFiles: 200,
  clients: 8,
  clientFile: 128 * MiB,
  dirCheckpoints: [100, 1000, 10_000],
  addsPerCheckpoint: 100,
  connectSamples: 5,
  copySmall: 1 * MiB,
  copyBig: 1 * GiB,
  snapshotFiles: 100_000,
};

/** --quick: a smoke run (CI); every workload runs, with sizes that prove nothing about speed. */
export const QUICK_SIZES: BenchSizes = {
  runs: 1,
  bigFile: 8 * MiB,
  hugeFile: 32 * MiB,
  smallFiles: 40,
  smallFileSize: 16 * KiB,
  s3SmallFiles: 10,
  clients: 8,
  clientFile: 1 * MiB,
  dirCheckpoints: [10, 50, 100],
  addsPerCheckpoint: 3,
  connectSamples: 2,
  copySmall: 1 * MiB,
  copyBig: 32 * MiB,
  snapshotFiles: 2_000,
};

/** Per-server samples (one per run), keyed by server name. */
export type Samples = Record<string, number[]>;

export interface GrowthPoint {
  entries: number;
  /** Per server: mean bytes added to its store, and mean ms, per added entry. */
  perServer: Record<string, { bytesPerAdd: number; msPerAdd: number }>;
}

export interface S3Results {
  fileBytes: number;
  putMBps?: number;
  getMBps?: number;
  /** Small files put through the S3 gateway in one session, and the S3 requests that cost. */
  smallFiles?: {
    files: number;
    fileBytes: number;
    filesPerSec: number;
    /** Requests from the session's first put to its end. */
    duringSession: RequestCounts;
    /** Requests after the session until the gateway had exited (work it deferred, flushed at shutdown). */
    untilExit: RequestCounts;
  };
  /** Why the workload (or part of it) did not run. */
  skipped?: string;
}

/** One tree of the snapshot workload (capstan only) and what snapshotting it took. */
export interface SnapshotTreeResult {
  files: number;
  directories: number;
  /** Untimed: linking its entries, with the engine's fsync off. */
  buildSeconds: number;
  /** Wall ms of each in-process Tree.createSnapshot of its root (fsync as configured: on). */
  ms: number[];
  /** This process's CPU-ms (user + system, every thread) during each of those. */
  cpuMs: number[];
  /** Wall ms of each whole `capstan snapshot create` command (node start, store open, snapshot, exit). */
  cliMs: number[];
}

export interface BenchResults {
  cipher: string;
  connectMs: Record<string, number>;
  putMBps: Samples;
  getMBps: Samples;
  /** Server CPU seconds per GiB put / got (whole session, handshake included). */
  putCpuPerGiB: Samples;
  getCpuPerGiB: Samples;
  /** Of those, what capstan's main thread (the event loop) used, CPU seconds per GiB; capstan only. */
  putMainCpuPerGiB: Samples;
  getMainCpuPerGiB: Samples;
  /** Of the server CPU per GiB, what the kernel spent (system time: socket and file system calls, page faults), every server. */
  putSystemCpuPerGiB: Samples;
  getSystemCpuPerGiB: Samples;
  smallFilesPerSec: Samples;
  /** Server CPU milliseconds per small file (whole session). */
  smallFilesCpuMs: Samples;
  concurrentMBps: Samples;
  /** Peak RSS (MiB) of the server process during each 8-client run: capstan, and rclone for comparison. */
  concurrentPeakMiB: Samples;
  /** RSS (MiB) of the server process right after each 8-client run (clients gone, `sync` done). */
  concurrentAfterMiB: Samples;
  /**
   * RSS (MiB) of the server process right before each 8-client run: what it
   * kept from the workloads and runs before (the two rows above include it).
   */
  concurrentBeforeMiB: Samples;
  lsSeconds: Samples;
  lsEntries?: number;
  /** Wall time of the sessions that filled the growth folder to its last checkpoint, per server, seconds. */
  populateSeconds: Record<string, number>;
  /** ms per entry added to the full growth folder, one sample per run. */
  oneMoreMs: Samples;
  /** capstan's memory during each big-file put, and during the one huge put. */
  rssBig: RssWindow[];
  rssHuge?: RssWindow;
  /** capstan's highest sampled RSS while each workload ran (setup included), MiB. */
  rssByWorkload: Record<string, number>;
  hugePutMBps?: number;
  dedup?: { fileBytes: number; firstUploadBytes: number; secondUploadBytes: number };
  growth: GrowthPoint[];
  /** The big file and small files through a second gateway whose chunks are in S3 (local Swift). */
  s3?: S3Results;
  /** Workloads a server could not do, with the reason (reported as not applicable). */
  notApplicable: Record<string, Partial<Record<ServerName, string>>>;
  /** ms of one `sftp cp` on the server of the small and of the big copy source, per server (copy workload). */
  copySmallMs: Samples;
  copyBigMs: Samples;
  /** The snapshot workload: the smaller tree, then the bigger. */
  snapshot?: { trees: SnapshotTreeResult[] };
  /** Untimed setup the budget still pays for (data generation, directory population), seconds. */
  setupSeconds: Record<string, number>;
}

export function emptyResults(cipher: string, connectMs: Map<string, number>): BenchResults {
  return {
    cipher,
    connectMs: Object.fromEntries(connectMs),
    putMBps: {},
    getMBps: {},
    putCpuPerGiB: {},
    getCpuPerGiB: {},
    putMainCpuPerGiB: {},
    getMainCpuPerGiB: {},
    putSystemCpuPerGiB: {},
    getSystemCpuPerGiB: {},
    smallFilesPerSec: {},
    smallFilesCpuMs: {},
    concurrentMBps: {},
    concurrentPeakMiB: {},
    concurrentAfterMiB: {},
    concurrentBeforeMiB: {},
    lsSeconds: {},
    populateSeconds: {},
    oneMoreMs: {},
    rssBig: [],
    rssByWorkload: {},
    growth: [],
    notApplicable: {},
    copySmallMs: {},
    copyBigMs: {},
    setupSeconds: {},
  };
}

export function push(samples: Samples, server: string, value: number): void {
  (samples[server] ??= []).push(value);
}

/** The servers in the order of run `run`: alternated, so none always goes first (cache warmth, writeback). */
export function orderFor(servers: BenchServer[], run: number): BenchServer[] {
  return run % 2 === 0 ? servers : [...servers].reverse();
}

/**
 * Runs `step` for each server in run `run`'s order. rclone is a third-party
 * server: if a step fails on it, the workload is recorded as not applicable
 * to rclone, with the error's first line as the reason, shown in the table,
 * and rclone is left out of that workload's later runs. A failure on capstan
 * or OpenSSH fails the benchmark, as before.
 */
export async function forEachServer(
  ctx: BenchContext,
  results: BenchResults,
  workload: string,
  run: number,
  step: (server: BenchServer) => Promise<void>,
): Promise<void> {
  for (const server of orderFor(ctx.servers, run)) {
    if (results.notApplicable[workload]?.[server.name] !== undefined) continue;
    try {
      await step(server);
    } catch (err) {
      if (server.name !== 'rclone') throw err;
      const reason = String((err as Error).message ?? err)
        .split('\n')[0]!
        .slice(0, 300);
      (results.notApplicable[workload] ??= {}).rclone = reason;
      ctx.log(`  rclone: ${workload} not applicable: ${reason}`);
    }
  }
}

const canMeasureCpu = treeCpuAvailable();

/**
 * Starts measuring the CPU of the server's process tree: stop() gives the
 * seconds since, system() (after stop) the kernel's part of them; both
 * undefined where /proc cannot tell.
 */
export function cpuWindow(server: BenchServer): { stop(): number | undefined; system(): number | undefined } {
  if (!canMeasureCpu) return { stop: () => undefined, system: () => undefined };
  const window = new TreeCpuWindow(server.pid);
  return { stop: () => window.stop(), system: () => window.systemSeconds() };
}

/** Flushes dirty pages, so one server's writeback does not land in the other's timing. */
export async function settle(ctx: BenchContext): Promise<void> {
  await ctx.registry.run('sync', [], { timeoutMs: 300_000 });
}

/** Median time of `samples` `pwd`-only sessions, ms. */
export async function measureConnect(ctx: Pick<BenchContext, 'client'>, server: BenchServer, samples: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) times.push((await sftpBatch(ctx.client, server, ['pwd'])).ms);
  return median(times);
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
