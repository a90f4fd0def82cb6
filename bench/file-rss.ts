/**
 * Immutable-file memory benchmark: streams generated data through
 * createFileWriter into an FsChunkStore in a temp dir, then back out through
 * FileReader.stream(), and reports MB/s and peak RSS (sampled every 100 ms)
 * for a file of half the size and one of the full size, so that flat memory
 * (RSS independent of file size) is visible side by side.
 *
 *     npm run build:bench && node dist-bench/bench/file-rss.js [--gib 2] [--chunk-size 1048576]
 *                                                  [--concurrency 4] [--no-fsync] [--dir /tmp] [--json]
 *
 * The data is one random MiB, stamped with a counter every 64 KiB so no two
 * chunks (of 64 KiB or more) dedupe; generating it costs next to nothing.
 * Reading back right after writing mostly hits the page cache: the download
 * figure is the file layer's cost (fetch, verify, decrypt), not the disk's.
 * Each size runs in its own child process (see runFileRss); the child exits
 * when its run ends, and on failure the parent reports its exit code.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FsChunkStore } from '../src/store/chunks/fs/fs-chunk-store.js';
import { createFileWriter, DEFAULT_CHUNK_SIZE, openFile } from '../src/tree/file/index.js';
import { numericOption, optionValue, runIfMain } from './cli.js';

export interface FileRssOptions {
  /** Largest file, in GiB; a file of half this size runs first (default 2). */
  gib?: number;
  chunkSize?: number;
  concurrency?: number;
  /** fsync each chunk put (default true, as a gateway runs). */
  fsync?: boolean;
  /** Parent of the temp store directory (default os.tmpdir()). */
  dir?: string;
}

export interface FileRssRun {
  bytes: number;
  uploadMBps: number;
  downloadMBps: number;
  peakRssUploadMiB: number;
  peakRssDownloadMiB: number;
}

export interface FileRssResult {
  chunkSize: number;
  concurrency: number;
  fsync: boolean;
  baselineRssMiB: number;
  runs: FileRssRun[];
}

const MiB = 1024 * 1024;
const STAMP_EVERY = 64 * 1024;

/** Peak RSS between start() and stop(), sampled every 100 ms (and at both ends). */
class RssSampler {
  #peak = 0;
  #timer: NodeJS.Timeout | undefined;
  start(): void {
    this.#peak = process.memoryUsage().rss;
    this.#timer = setInterval(() => this.#sample(), 100);
    this.#timer.unref();
  }
  stop(): number {
    this.#sample();
    clearInterval(this.#timer);
    return this.#peak / MiB;
  }
  #sample(): void {
    this.#peak = Math.max(this.#peak, process.memoryUsage().rss);
  }
}

async function runOnce(bytes: number, options: Required<FileRssOptions>): Promise<FileRssRun> {
  const root = await mkdtemp(path.join(options.dir, 'capstan-file-rss-'));
  try {
    const store = await FsChunkStore.open(root, { fsync: options.fsync });
    const convergence = randomBytes(32);
    const piece = randomBytes(MiB);
    const sampler = new RssSampler();

    sampler.start();
    let started = performance.now();
    const writer = createFileWriter(store, convergence, { chunkSize: options.chunkSize, concurrency: options.concurrency });
    for (let i = 0; i < bytes / MiB; i++) {
      for (let at = 0; at < MiB; at += STAMP_EVERY) piece.writeUInt32BE(i, at);
      await writer.write(piece);
    }
    const { cap } = await writer.finish();
    const uploadSeconds = (performance.now() - started) / 1000;
    const peakRssUploadMiB = sampler.stop();

    sampler.start();
    started = performance.now();
    const reader = await openFile(store, cap);
    let read = 0;
    for await (const part of reader.stream()) read += part.length;
    const downloadSeconds = (performance.now() - started) / 1000;
    const peakRssDownloadMiB = sampler.stop();
    if (read !== bytes) throw new Error(`read back ${read} bytes of ${bytes}`);

    return {
      bytes,
      uploadMBps: bytes / 1e6 / uploadSeconds,
      downloadMBps: bytes / 1e6 / downloadSeconds,
      peakRssUploadMiB,
      peakRssDownloadMiB,
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Runs each size in a fresh child process (this file, with --run-one), so
 * the second run does not inherit the first one's heap and allocator state:
 * in one process the larger run reads 10-20 MiB higher from GC timing alone,
 * which looks like growth with file size and is not.
 */
export async function runFileRss(options: FileRssOptions = {}): Promise<FileRssResult> {
  const full = withDefaults(options);
  const largest = Math.round(full.gib * 1024) * MiB;
  const runs: FileRssRun[] = [];
  let baselineRssMiB = 0;
  for (const bytes of [Math.round(largest / 2 / MiB) * MiB, largest]) {
    const child = await runInChild(bytes, full);
    baselineRssMiB = child.baselineRssMiB;
    runs.push(child.run);
  }
  return { chunkSize: full.chunkSize, concurrency: full.concurrency, fsync: full.fsync, baselineRssMiB, runs };
}

function withDefaults(options: FileRssOptions): Required<FileRssOptions> {
  return {
    gib: options.gib ?? 2,
    chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    concurrency: options.concurrency ?? 4,
    fsync: options.fsync ?? true,
    dir: options.dir ?? tmpdir(),
  };
}

interface ChildReport {
  baselineRssMiB: number;
  run: FileRssRun;
}

function runInChild(bytes: number, options: Required<FileRssOptions>): Promise<ChildReport> {
  const child = fork(fileURLToPath(import.meta.url), ['--run-one', JSON.stringify({ bytes, options })], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (output += text));
  return new Promise<ChildReport>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(JSON.parse(output) as ChildReport);
      else reject(new Error(`benchmark child exited with ${code ?? signal}`));
    });
  });
}

async function runOneInThisProcess(spec: string): Promise<void> {
  const { bytes, options } = JSON.parse(spec) as { bytes: number; options: Required<FileRssOptions> };
  const baselineRssMiB = process.memoryUsage().rss / MiB;
  const run = await runOnce(bytes, options);
  process.stdout.write(JSON.stringify({ baselineRssMiB, run } satisfies ChildReport));
}

export function formatFileRss(result: FileRssResult): string {
  const lines = [
    `chunk size ${result.chunkSize / 1024} KiB, concurrency ${result.concurrency}, fsync ${result.fsync}, baseline RSS ${result.baselineRssMiB.toFixed(0)} MiB`,
    'size        upload MB/s  download MB/s  peak RSS up (MiB)  peak RSS down (MiB)',
  ];
  for (const run of result.runs) {
    lines.push(
      [
        `${(run.bytes / 1024 ** 3).toFixed(2)} GiB`.padEnd(12),
        run.uploadMBps.toFixed(0).padStart(11),
        run.downloadMBps.toFixed(0).padStart(15),
        run.peakRssUploadMiB.toFixed(0).padStart(19),
        run.peakRssDownloadMiB.toFixed(0).padStart(21),
      ].join(''),
    );
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const one = optionValue(argv, '--run-one');
  if (one !== undefined) return runOneInThisProcess(one);
  const given = (o: Record<string, unknown>): FileRssOptions =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as FileRssOptions;
  const result = await runFileRss(
    given({
      gib: numericOption(argv, '--gib'),
      chunkSize: numericOption(argv, '--chunk-size'),
      concurrency: numericOption(argv, '--concurrency'),
      fsync: !argv.includes('--no-fsync'),
      dir: optionValue(argv, '--dir'),
    }),
  );
  console.log(argv.includes('--json') ? JSON.stringify(result) : formatFileRss(result));
}

runIfMain(import.meta.url, main);
