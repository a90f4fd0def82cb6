import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cpuWindow, forEachServer, push, settle, type BenchContext, type BenchResults, type GrowthPoint } from './context.js';
import type { Workload } from './schedule.js';
import { stampFiles, treeBytes, writeSmallFiles } from './data.js';
import { outputLines, sftpBatch, timedBatch, q } from './sftp.js';

/**
 * Many-entry workloads: many small files in one session (2), `ls -l` of a
 * big directory (3), and the cost of one more entry as a directory grows
 * (7). 3 and 7 share one directory per server, grown in stages, so the
 * 10,000 entries are populated once (and that population is timed).
 */

/** Workload 2: `put dir/*` of `smallFiles` files into a fresh folder per run. */
export function smallFilesWorkload(ctx: BenchContext, results: BenchResults): Workload {
  const { smallFiles: count, smallFileSize } = ctx.sizes;
  const dir = path.join(ctx.dataDir, 'small');
  let files: string[] = [];
  return {
    name: 'small',
    what: `put of ${count} files of ${smallFileSize / 1024} KiB in one session`,
    repeatable: true,
    async prepare() {
      const started = performance.now();
      files = await writeSmallFiles(dir, count, smallFileSize);
      results.setupSeconds['generate small files'] = (performance.now() - started) / 1000;
      // Untimed, the same for every server: one pass of the same puts into a folder of its own. capstan's
      // JIT compiles the small-file path over its first few thousand uploads: in one gateway, three
      // batches of 1,000 fresh files took 4.2, 3.3 and 2.9 CPU-ms per file, most of the difference on V8's
      // compiler threads. With the budget allowing one run (not three, whose median would be warm), the
      // figure was that of a cold gateway, which is not what a running one spends per upload.
      const warming = performance.now();
      await forEachServer(ctx, results, 'small', 0, async (server) => {
        await stampFiles(files, smallFileSize);
        await sftpBatch(ctx.client, server, [`mkdir ${WARM_DIR}`, `cd ${WARM_DIR}`, `put ${q(dir)}/*`]);
      });
      results.setupSeconds['warm up small files'] = (performance.now() - warming) / 1000;
    },
    async run(run) {
      await forEachServer(ctx, results, 'small', run, async (server) => {
        await stampFiles(files, smallFileSize);
        await settle(ctx);
        const target = `small-r${run}`;
        const cpu = cpuWindow(server);
        const r = await timedBatch(ctx.client, server, [`mkdir ${target}`, `cd ${target}`], [`put ${q(dir)}/*`]);
        const cpuSeconds = cpu.stop();
        if (cpuSeconds !== undefined) push(results.smallFilesCpuMs, server.name, (cpuSeconds * 1000) / count);
        const perSec = count / r.seconds;
        push(results.smallFilesPerSec, server.name, perSec);
        ctx.log(`  run ${run + 1} ${server.name}: ${perSec.toFixed(0)} files/s`);
      });
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Where the small-file workload's untimed warm-up pass puts its files. */
const WARM_DIR = 'small-warm';
const GROW_DIR = 'grow';
/** Sessions filling the growth folder at once (every server accepts concurrent writers). */
const FILL_SESSIONS = 4;

/** Batch lines putting `local` as each of `names` (in the current remote folder). */
function putLines(local: string, names: string[]): string[] {
  return names.map((n) => `put ${q(local)} ${n}`);
}

function names(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: Math.max(to - from, 0) }, (_, i) => `${prefix}${String(from + i).padStart(5, '0')}`);
}

/**
 * Workloads 7 and 3, sharing one folder per server. prepare: grow the
 * folder to each checkpoint with empty files (untimed, but the wall time of
 * all the sessions that put the entries is reported as the time to populate
 * it), adding the last `addsPerCheckpoint` entries (1-byte files) in a timed
 * session of their own while measuring the store. run: time `ls -l` of the
 * full folder, then time `addsPerCheckpoint` more entries in it (a sample of
 * "one more entry" per run) and remove them again, untimed, so that every
 * run lists and grows the same folder.
 */
export function directoryWorkload(ctx: BenchContext, results: BenchResults): Workload {
  const { dirCheckpoints, addsPerCheckpoint: adds } = ctx.sizes;
  const expected = dirCheckpoints.at(-1) ?? 0;
  const oneByte = path.join(ctx.dataDir, 'one-byte');
  return {
    name: 'dirs',
    what: `one more entry at ${dirCheckpoints.join(', ')} entries, then ls -l of ${expected}`,
    repeatable: true,
    async prepare() {
      const empty = path.join(ctx.dataDir, 'empty');
      await writeFile(empty, '');
      await writeFile(oneByte, 'x');
      const points = new Map<number, GrowthPoint>(dirCheckpoints.map((n) => [n, { entries: n, perServer: {} }]));
      // Population is the same for every run: no alternation needed, any order.
      await forEachServer(ctx, results, 'dirs', 0, async (server) => {
        await sftpBatch(ctx.client, server, [`mkdir ${GROW_DIR}`]);
        let have = 0;
        let populateSeconds = 0;
        for (const checkpoint of dirCheckpoints) {
          const fillTo = Math.max(checkpoint - adds, have);
          if (fillTo > have) {
            const started = performance.now();
            const all = names('e', have, fillTo);
            const share = Math.ceil(all.length / FILL_SESSIONS);
            await Promise.all(
              Array.from({ length: FILL_SESSIONS }, (_, k) => all.slice(k * share, (k + 1) * share))
                .filter((part) => part.length > 0)
                .map((part) => sftpBatch(ctx.client, server, [`cd ${GROW_DIR}`, ...putLines(empty, part)])),
            );
            populateSeconds += (performance.now() - started) / 1000;
            have = fillTo;
          }
          const count = checkpoint - have;
          await settle(ctx);
          const before = await treeBytes(server.storeDir);
          const started = performance.now();
          const r = await timedBatch(ctx.client, server, [`cd ${GROW_DIR}`], putLines(oneByte, names(`a${checkpoint}-`, 0, count)));
          populateSeconds += (performance.now() - started) / 1000;
          const after = await treeBytes(server.storeDir);
          have = checkpoint;
          const cost = { bytesPerAdd: (after - before) / count, msPerAdd: (r.seconds * 1000) / count };
          points.get(checkpoint)!.perServer[server.name] = cost;
          ctx.log(
            `  ${server.name}: one more entry at ${checkpoint}: ${cost.bytesPerAdd.toFixed(0)} bytes, ${cost.msPerAdd.toFixed(1)} ms`,
          );
        }
        results.populateSeconds[server.name] = populateSeconds;
        ctx.log(`  ${server.name}: populated ${have} entries in ${populateSeconds.toFixed(1)} s`);
      });
      results.growth = [...points.values()];
    },
    async run(run) {
      await forEachServer(ctx, results, 'dirs', run, async (server) => {
        const r = await timedBatch(ctx.client, server, [], [`ls -l ${GROW_DIR}`]);
        const listed = outputLines(r.stdout).length;
        if (listed !== expected) throw new Error(`ls -l on ${server.name} listed ${listed} entries, expected ${expected}`);
        results.lsEntries = listed;
        push(results.lsSeconds, server.name, r.seconds);
        const added = names(`m${run}-`, 0, adds);
        // As before the adds measured while populating: no writeback of earlier work in this timing.
        await settle(ctx);
        const grow = await timedBatch(
          ctx.client,
          server,
          [`cd ${GROW_DIR}`],
          putLines(oneByte, added),
          added.map((n) => `rm ${n}`),
        );
        const ms = (grow.seconds * 1000) / adds;
        push(results.oneMoreMs, server.name, ms);
        ctx.log(
          `  run ${run + 1} ${server.name}: ls -l of ${expected} entries ${r.seconds.toFixed(3)} s, one more entry ${ms.toFixed(1)} ms`,
        );
      });
    },
  };
}
