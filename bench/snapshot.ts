import path from 'node:path';
import type { DirectoryWriteCap } from '../src/cap/index.js';
import { loadConfig, type NodeConfig } from '../src/config/index.js';
import { randomBytes } from '../src/crypto/index.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { LevelObjectIndex } from '../src/store/packs/level-index.js';
import { LocalEngine } from '../src/store/packs/local-engine.js';
import { createTree, type Tree } from '../src/tree/index.js';
import { settle, type BenchContext, type BenchResults, type SnapshotTreeResult } from './context.js';
import type { Workload } from './schedule.js';

/**
 * Issue 14: the time to snapshot a tree of 10,000 files and of 100,000
 * (they must be about equal: a snapshot is a pin in the slot store's
 * history, docs/spec/snapshots.md, and reads nothing under the root).
 *
 * capstan only, in this process: a node made by `capstan init` in the
 * scratch folder, its embedded default engine (LocalEngine) opened on the
 * node's store as the gateway opens it, and `Tree.createSnapshot` timed on
 * the root of each tree, as the gateway (its schedule) takes one; then the
 * whole `capstan snapshot create` command on the same roots. The main
 * gateway is not involved (it is idle while this runs).
 */

/** Entries per directory: every tree is directories of this many distinct names (the last one may hold fewer). */
export const SNAPSHOT_DIRECTORY_ENTRIES = 1000;
/** In-process snapshots per tree in each run: a run is cheap, and a median wants several. */
export const SNAPSHOT_SAMPLES_PER_RUN = 15;
/** `capstan snapshot create` commands per tree in each run (each starts node and opens the store: ~0.5 s). */
export const SNAPSHOT_CLI_SAMPLES_PER_RUN = 2;
/** Directories filled at once while building (links to one directory are serial; these share the 2 cores). */
const BUILD_CONCURRENCY = 4;

/** The two tree sizes: a tenth of `files`, and `files` (10,000 and 100,000 by default). */
export function snapshotTreeSizes(files: number): [number, number] {
  return [Math.max(1, Math.round(files / 10)), files];
}

interface BuiltTree {
  files: number;
  directories: number;
  root: DirectoryWriteCap;
  result: SnapshotTreeResult;
}

export function snapshotWorkload(ctx: BenchContext, results: BenchResults, o: { repo: string; workDir: string }): Workload {
  const sizes = snapshotTreeSizes(ctx.sizes.snapshotFiles);
  const nodeDir = path.join(o.workDir, 'snapshot-node');
  const cli = path.join(o.repo, 'dist/cli/main.js');
  let config: NodeConfig | undefined;
  let trees: BuiltTree[] = [];
  const openEngine = (fsync: boolean): Promise<LocalEngine> =>
    LocalEngine.open({ slotsDir: config!.storage.slotsDir, packsDir: path.join(config!.storage.fsDir, 'packs'), fsync });

  return {
    name: 'snapshot',
    what: `snapshot of a tree of ${sizes[0].toLocaleString('en-US')} and of ${sizes[1].toLocaleString('en-US')} files (capstan only, in-process, then the CLI)`,
    repeatable: true,
    async prepare() {
      const started = performance.now();
      const init = await ctx.registry.run(process.execPath, [cli, 'init', '-d', nodeDir], { timeoutMs: 120_000 });
      if (init.code !== 0) throw new Error(`capstan init failed: ${(init.stderr || init.stdout).trim()}`);
      config = await loadConfig(nodeDir);
      // Built with the engine's fsync off (about 110,000 compare-and-swaps), measured with it on (reopened below).
      const engine = await openEngine(false);
      const tree = createTree({ chunks: engine.chunks, slots: engine.slots });
      try {
        trees = [];
        for (const files of sizes) trees.push(await buildTree(tree, files, ctx.log));
      } finally {
        await tree.close();
        await engine.close();
      }
      results.snapshot = { trees: trees.map((t) => t.result) };
      // The build's dirty pages (hundreds of MB of packs) must not be written back during the measurement.
      await settle(ctx);
      results.setupSeconds[`build snapshot trees (${sizes.map((n) => n.toLocaleString('en-US')).join(' + ')} files, fsync off)`] =
        (performance.now() - started) / 1000;
    },
    async run(run) {
      await settle(ctx);
      const order = run % 2 === 0 ? trees : [...trees].reverse();
      // The whole command first, while nothing holds the node's LevelDB: it opens the store itself, as an operator's would.
      for (let i = 0; i < SNAPSHOT_CLI_SAMPLES_PER_RUN; i++) {
        for (const t of order) {
          const started = performance.now();
          const r = await ctx.registry.run(process.execPath, [...NODE_FLAGS, cli, 'snapshot', 'create', t.root.toString(), '-d', nodeDir], {
            timeoutMs: 120_000,
          });
          const ms = performance.now() - started;
          if (r.code !== 0) throw new Error(`capstan snapshot create failed: ${(r.stderr || r.stdout).trim()}`);
          if (!r.stdout.startsWith('CS1:DIR-SNAP:')) throw new Error(`capstan snapshot create printed no snapshot cap: ${r.stdout}`);
          t.result.cliMs.push(ms);
        }
      }
      const engine = await openEngine(config!.storage.fsFsync);
      await missFilterBuilt(engine);
      const tree = createTree({ chunks: engine.chunks, slots: engine.slots });
      try {
        // Untimed: the CLI's snapshots go, so that every run starts from the same pins (none).
        for (const t of trees) for (const s of await tree.listSnapshots(t.root)) await tree.removeSnapshot(s.cap);
        for (let i = 0; i < SNAPSHOT_SAMPLES_PER_RUN; i++) {
          for (const t of order) {
            const cpu = process.cpuUsage();
            const started = performance.now();
            const snapshot = await tree.createSnapshot(t.root);
            const ms = performance.now() - started;
            const used = process.cpuUsage(cpu);
            t.result.ms.push(ms);
            t.result.cpuMs.push((used.user + used.system) / 1000);
            await tree.removeSnapshot(snapshot.cap);
          }
        }
      } finally {
        await tree.close();
        await engine.close();
      }
      const line = trees.map(
        (t) =>
          `${t.files} files ${lastRunMedian(t.result.ms, SNAPSHOT_SAMPLES_PER_RUN)} ms (CLI ${lastRunMedian(t.result.cliMs, SNAPSHOT_CLI_SAMPLES_PER_RUN)} ms)`,
      );
      ctx.log(`  run ${run + 1} capstan: snapshot ${line.join(', ')}`);
    },
  };
}

/**
 * The object index builds its miss filter by a background scan of every
 * index key after the engine opens (src/store/packs/level-index.ts); a
 * gateway's snapshots come long after its start, so the timing waits for
 * it rather than share the cores with it. Bounded; polled (nothing signals it).
 */
async function missFilterBuilt(engine: LocalEngine): Promise<void> {
  const index = engine.chunks.index;
  if (!(index instanceof LevelObjectIndex)) return;
  const deadline = performance.now() + 120_000;
  while (index.filter === undefined) {
    if (performance.now() > deadline) throw new Error('the object index filter was not built within 120 s of opening the store');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The median of the last `n` samples (this run's), for the progress line. */
function lastRunMedian(values: number[], n: number): string {
  const last = values.slice(-n).sort((a, b) => a - b);
  return (last[last.length >> 1] ?? Number.NaN).toFixed(1);
}

/**
 * A root with ceil(files / 1000) distinct directories (made with mkdir, no
 * shared links) of up to 1000 distinct names each, every one linking the
 * same small file: a snapshot never reads files, only the count of the root.
 */
async function buildTree(tree: Tree, files: number, log: (line: string) => void): Promise<BuiltTree> {
  const started = performance.now();
  const root = await tree.createDirectory();
  const rootDir = tree.directory(root);
  const writer = tree.createFileWriter(randomBytes(32));
  await writer.write(new TextEncoder().encode('snapshot bench\n'));
  const file = await writer.finish();
  const now = Date.now();
  const metadata = { size: file.size, mtimeMs: now, ctimeMs: now };
  const directories = Math.ceil(files / SNAPSHOT_DIRECTORY_ENTRIES);
  const width = String(directories - 1).length;
  const dirs: { name: string; cap: DirectoryWriteCap; entries: number }[] = [];
  for (let d = 0; d < directories; d++) {
    const name = `d${String(d).padStart(width, '0')}`;
    const entries = Math.min(SNAPSHOT_DIRECTORY_ENTRIES, files - d * SNAPSHOT_DIRECTORY_ENTRIES);
    dirs.push({ name, cap: await rootDir.mkdir(name), entries });
  }
  let next = 0;
  let done = 0;
  const fill = async (): Promise<void> => {
    for (let d = next++; d < dirs.length; d = next++) {
      const dir = dirs[d]!;
      const handle = tree.directory(dir.cap);
      // Names distinct across the whole tree, not only within their directory.
      for (let e = 0; e < dir.entries; e++) await handle.link(`${dir.name}-f${String(e).padStart(4, '0')}`, file.cap, metadata);
      done += dir.entries;
      if (dirs.length >= 10 && (d + 1) % Math.ceil(dirs.length / 10) === 0)
        log(`  building the ${files.toLocaleString('en-US')}-file tree: ${done.toLocaleString('en-US')} entries linked`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(BUILD_CONCURRENCY, dirs.length) }, fill));
  const buildSeconds = (performance.now() - started) / 1000;
  log(`  built a tree of ${files.toLocaleString('en-US')} files in ${directories} directories in ${buildSeconds.toFixed(1)} s`);
  return { files, directories, root, result: { files, directories, buildSeconds, ms: [], cpuMs: [], cliMs: [] } };
}
