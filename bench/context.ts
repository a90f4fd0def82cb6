import { TreeCpuWindow, treeCpuAvailable } from './cpu.js';
import type { ProcessRegistry } from './procs.js';
import type { ProcRssSampler, RssWindow } from './rss.js';
import type { BenchServer } from './servers.js';
import { sftpBatch, type SftpClient } from './sftp.js';
import { GiB, KiB, MiB } from './data.js';

/** What every workload gets: the servers, the one client, sizes, and where to put local data. */
export interface BenchContext {
  registry: ProcessRegistry;
  client: SftpClient;
  /** capstan first; OpenSSH second when it runs. */
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
  clients: number;
  clientFile: number;
  /** Directory sizes at which one more entry is measured; the last is also the `ls -l` directory. */
  dirCheckpoints: number[];
  /** Adds measured (and averaged) at each checkpoint. */
  addsPerCheckpoint: number;
  connectSamples: number;
}

export const FULL_SIZES: BenchSizes = {
  runs: 3,
  bigFile: 1 * GiB,
  hugeFile: 4 * GiB,
  smallFiles: 2000,
  smallFileSize: 16 * KiB,
  clients: 8,
  clientFile: 128 * MiB,
  dirCheckpoints: [100, 1000, 10_000],
  addsPerCheckpoint: 20,
  connectSamples: 5,
};

/** --quick: a smoke run (CI); every workload runs, with sizes that prove nothing about speed. */
export const QUICK_SIZES: BenchSizes = {
  runs: 1,
  bigFile: 8 * MiB,
  hugeFile: 32 * MiB,
  smallFiles: 40,
  smallFileSize: 16 * KiB,
  clients: 8,
  clientFile: 1 * MiB,
  dirCheckpoints: [10, 50, 100],
  addsPerCheckpoint: 3,
  connectSamples: 2,
};

/** Per-server samples (one per run), keyed by server name. */
export type Samples = Record<string, number[]>;

export interface GrowthPoint {
  entries: number;
  /** Per server: mean bytes added to its store, and mean ms, per added entry. */
  perServer: Record<string, { bytesPerAdd: number; msPerAdd: number }>;
}

export interface BenchResults {
  cipher: string;
  connectMs: Record<string, number>;
  putMBps: Samples;
  getMBps: Samples;
  /** Server CPU seconds per GiB put / got (whole session, handshake included). */
  putCpuPerGiB: Samples;
  getCpuPerGiB: Samples;
  smallFilesPerSec: Samples;
  /** Server CPU milliseconds per small file (whole session). */
  smallFilesCpuMs: Samples;
  concurrentMBps: Samples;
  lsSeconds: Samples;
  lsEntries?: number;
  /** capstan's memory during each big-file put, and during the one huge put. */
  rssBig: RssWindow[];
  rssHuge?: RssWindow;
  /** capstan's highest sampled RSS while each workload ran (setup included), MiB. */
  rssByWorkload: Record<string, number>;
  hugePutMBps?: number;
  dedup?: { fileBytes: number; firstUploadBytes: number; secondUploadBytes: number };
  growth: GrowthPoint[];
  /** The big file through a second gateway whose chunks are in S3 (local Swift): MB/s, or why it was skipped. */
  s3?: { fileBytes: number; putMBps?: number; getMBps?: number; skipped?: string };
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
    smallFilesPerSec: {},
    smallFilesCpuMs: {},
    concurrentMBps: {},
    lsSeconds: {},
    rssBig: [],
    rssByWorkload: {},
    growth: [],
    setupSeconds: {},
  };
}

export function push(samples: Samples, server: string, value: number): void {
  (samples[server] ??= []).push(value);
}

/** The servers in the order of run `run`: alternated, so neither always goes first (cache warmth, writeback). */
export function orderFor(servers: BenchServer[], run: number): BenchServer[] {
  return run % 2 === 0 ? servers : [...servers].reverse();
}

const canMeasureCpu = treeCpuAvailable();

/** Starts measuring the CPU of the server's process tree; stop() gives seconds, undefined where /proc cannot tell. */
export function cpuWindow(server: BenchServer): { stop(): number | undefined } {
  if (!canMeasureCpu) return { stop: () => undefined };
  const window = new TreeCpuWindow(server.pid);
  return { stop: () => window.stop() };
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
