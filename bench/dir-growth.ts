/**
 * Directory growth benchmark: adds entries one at a time, through the
 * Directory API, to one directory on an FsChunkStore + LevelSlotStore in a
 * temp dir, and reports the bytes written and time per add at 100, 1,000 and
 * 10,000 entries, and the time to list() the result (cold cache: a fresh Tree,
 * as a second gateway would see it; and warm).
 *
 *     node dist-bench/bench/dir-growth.js [--entries 10000] [--no-fsync] [--memory]
 *                                   [--bucket 32 --bits 4] [--json]
 *
 * "Bytes per add at N" is the mean over the 50 adds that end at N entries
 * (one add's cost depends on which bucket the name lands in, so a single add
 * is noise). It counts every byte put into the chunk store: the rewritten
 * nodes of one root-to-bucket path, plus any split.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileReadCap } from '../src/cap/index.js';
import { randomBytes } from '../src/crypto/index.js';
import type { AbortOptions } from '../src/errors.js';
import type { ChunkAddress, ChunkStore } from '../src/store/chunks/chunk-store.js';
import { ForwardingChunkStore } from '../src/store/chunks/forwarding.js';
import { FsChunkStore } from '../src/store/chunks/fs/fs-chunk-store.js';
import { LevelSlotStore } from '../src/store/slots/level.js';
import { MemoryChunkStore } from '../src/store/chunks/memory.js';
import { MemorySlotStore } from '../src/store/slots/memory.js';
import type { SlotStore } from '../src/store/slots/slot-store.js';
import { DEFAULT_LAYOUT, type DirectoryLayout } from '../src/tree/dir/context.js';
import { createTreeWithInternals } from '../src/tree/tree.js';
import { optionValue, runIfMain } from './cli.js';

export interface DirGrowthOptions {
  entries?: number | undefined;
  /** Chunk store on disk (default) or in memory. */
  memory?: boolean | undefined;
  /** fsync each node put (default true, as a gateway runs). */
  fsync?: boolean | undefined;
  layout?: DirectoryLayout | undefined;
  /** Checkpoints to report (entry counts). */
  checkpoints?: number[] | undefined;
}

export interface DirGrowthCheckpoint {
  entries: number;
  bytesPerAdd: number;
  putsPerAdd: number;
  msPerAdd: number;
}

export interface DirGrowthResult {
  layout: DirectoryLayout;
  store: string;
  checkpoints: DirGrowthCheckpoint[];
  listColdMs: number;
  listWarmMs: number;
  listed: number;
  totalBytes: number;
}

const WINDOW = 50;

/** Counts what is put through it; wraps any ChunkStore. */
export class CountingChunkStore extends ForwardingChunkStore {
  bytes = 0;
  puts = 0;
  override put(bytes: Uint8Array, options?: AbortOptions): Promise<ChunkAddress> {
    this.bytes += bytes.length;
    this.puts += 1;
    return this.inner.put(bytes, options);
  }
}

export async function runDirGrowth(options: DirGrowthOptions = {}): Promise<DirGrowthResult> {
  const entries = options.entries ?? 10_000;
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const checkpoints = (options.checkpoints ?? [100, 1_000, 10_000]).filter((n) => n <= entries);
  const dir = await mkdtemp(path.join(tmpdir(), 'capstan-dir-growth-'));
  let inner: ChunkStore | undefined;
  let slots: SlotStore | undefined;
  try {
    inner = options.memory ? new MemoryChunkStore() : await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: options.fsync ?? true });
    slots = options.memory ? new MemorySlotStore() : await LevelSlotStore.open(path.join(dir, 'slots'));
    const chunks = new CountingChunkStore(inner);
    const tree = createTreeWithInternals({ chunks, slots }, { layout });
    const cap = await tree.createDirectory();
    const directory = tree.directory(cap);
    const results: DirGrowthCheckpoint[] = [];
    let windowStart = { bytes: 0, puts: 0, ms: 0 };
    for (let i = 1; i <= entries; i++) {
      const next = checkpoints.find((n) => n >= i);
      if (next !== undefined && i === next - WINDOW + 1) windowStart = { bytes: chunks.bytes, puts: chunks.puts, ms: performance.now() };
      const fileCap = new FileReadCap(randomBytes(32), randomBytes(32), 1000 + i);
      const now = Date.now();
      await directory.link(`file-${String(i).padStart(6, '0')}.dat`, fileCap, { size: 1000 + i, mtimeMs: now, ctimeMs: now });
      if (checkpoints.includes(i)) {
        const n = Math.min(WINDOW, i);
        results.push({
          entries: i,
          bytesPerAdd: Math.round((chunks.bytes - windowStart.bytes) / n),
          putsPerAdd: (chunks.puts - windowStart.puts) / n,
          msPerAdd: (performance.now() - windowStart.ms) / n,
        });
      }
    }
    const timeList = async (t: ReturnType<typeof createTreeWithInternals>): Promise<{ ms: number; n: number }> => {
      const start = performance.now();
      let n = 0;
      for await (const _ of t.directory(cap).list()) n++;
      return { ms: performance.now() - start, n };
    };
    const fresh = createTreeWithInternals({ chunks: inner, slots }, { layout });
    const cold = await timeList(fresh);
    const warm = await timeList(fresh);
    await fresh.close();
    await tree.close();
    return {
      layout,
      store: options.memory ? 'memory' : `fs${options.fsync === false ? ' (no fsync)' : ''} + level`,
      checkpoints: results,
      listColdMs: cold.ms,
      listWarmMs: warm.ms,
      listed: cold.n,
      totalBytes: chunks.bytes,
    };
  } finally {
    await slots?.close();
    await inner?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function formatResult(r: DirGrowthResult): string {
  const lines = [`layout B=${r.layout.bucketMax} k=${r.layout.branchBits} (${1 << r.layout.branchBits}-way), store ${r.store}`];
  for (const c of r.checkpoints) {
    lines.push(
      `  at ${String(c.entries).padStart(6)} entries: ${String(c.bytesPerAdd).padStart(6)} bytes/add, ${c.putsPerAdd.toFixed(2)} puts/add, ${c.msPerAdd.toFixed(2)} ms/add`,
    );
  }
  lines.push(
    `  list() of ${r.listed}: ${r.listColdMs.toFixed(1)} ms cold, ${r.listWarmMs.toFixed(1)} ms warm; ${(r.totalBytes / 1048576).toFixed(1)} MiB written in all`,
  );
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const bucket = optionValue(argv, '--bucket');
  const bits = optionValue(argv, '--bits');
  const result = await runDirGrowth({
    entries: Number(optionValue(argv, '--entries') ?? 10_000),
    memory: argv.includes('--memory'),
    fsync: !argv.includes('--no-fsync'),
    layout:
      bucket || bits
        ? { bucketMax: Number(bucket ?? DEFAULT_LAYOUT.bucketMax), branchBits: Number(bits ?? DEFAULT_LAYOUT.branchBits) }
        : undefined,
    checkpoints: optionValue(argv, '--checkpoints')?.split(',').map(Number),
  });
  console.log(argv.includes('--json') ? JSON.stringify(result) : formatResult(result));
}

runIfMain(import.meta.url, main);
