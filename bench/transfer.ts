import { rm } from 'node:fs/promises';
import path from 'node:path';
import { cpuWindow, forEachServer, push, settle, type BenchContext, type BenchResults, type Samples } from './context.js';
import { threadCpuSeconds } from './cpu.js';
import { GiB, stampFile, treeBytes, writeRandomFile } from './data.js';
import { peakMiB, ProcRssSampler, rssMiB } from './rss.js';
import type { BenchServer } from './servers.js';
import type { Workload } from './schedule.js';
import { timedBatch, q } from './sftp.js';

/**
 * Large-file workloads: put/get of one big file (capstan's memory sampled
 * during each put; the dedup check after its first put), the huge-file put
 * for flat memory, and N concurrent clients.
 */

function mbps(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

/** Records CPU seconds per GiB moved, if measured. */
function pushCpu(samples: Samples, server: BenchServer, seconds: number | undefined, bytes: number): void {
  if (seconds !== undefined) push(samples, server.name, (seconds * GiB) / bytes);
}

/** capstan's main-thread CPU from now: stop() gives the seconds used since (undefined for others, or if unreadable). */
function mainThreadWindow(server: BenchServer, isCapstan: boolean): { stop(): number | undefined } {
  const start = isCapstan ? threadCpuSeconds(server.pid) : undefined;
  return {
    stop: () => {
      const end = start === undefined ? undefined : threadCpuSeconds(server.pid);
      return start === undefined || end === undefined ? undefined : end - start;
    },
  };
}

/** Workloads 1, 5 (first half) and 6. */
export function bigFileWorkload(ctx: BenchContext, results: BenchResults, withDedup: boolean): Workload {
  const { bigFile } = ctx.sizes;
  const local = path.join(ctx.dataDir, 'big.bin');
  return {
    name: 'transfer',
    what: `put and get of one ${bigFile / 2 ** 20} MiB file${withDedup ? ', then the dedup check' : ''}`,
    repeatable: true,
    async prepare() {
      const started = performance.now();
      await writeRandomFile(local, bigFile);
      results.setupSeconds['generate big file'] = (performance.now() - started) / 1000;
    },
    async run(run) {
      await forEachServer(ctx, results, 'transfer', run, async (server) => {
        const remote = `big-r${run}.bin`;
        await stampFile(local, bigFile);
        await settle(ctx);
        const isCapstan = server === ctx.capstan;
        const dedupRun = isCapstan && withDedup && run === 0;
        const storeBefore = dedupRun ? await treeBytes(server.storeDir) : 0;
        if (isCapstan) ctx.capstanRss.start();
        let cpu = cpuWindow(server);
        let main = mainThreadWindow(server, isCapstan);
        const put = await timedBatch(ctx.client, server, [], [`put ${q(local)} ${q(remote)}`]);
        if (isCapstan) results.rssBig.push(ctx.capstanRss.stop());
        pushCpu(results.putCpuPerGiB, server, cpu.stop(), bigFile);
        pushCpu(results.putSystemCpuPerGiB, server, cpu.system(), bigFile);
        pushCpu(results.putMainCpuPerGiB, server, main.stop(), bigFile);
        const putMBps = mbps(bigFile, put.seconds);
        push(results.putMBps, server.name, putMBps);

        // Read to /dev/null: the client's disk is not part of the measurement.
        await server.beforeRead?.(remote);
        await settle(ctx);
        cpu = cpuWindow(server);
        main = mainThreadWindow(server, isCapstan);
        const get = await timedBatch(ctx.client, server, [], [`get ${q(remote)} /dev/null`]);
        pushCpu(results.getCpuPerGiB, server, cpu.stop(), bigFile);
        pushCpu(results.getSystemCpuPerGiB, server, cpu.system(), bigFile);
        pushCpu(results.getMainCpuPerGiB, server, main.stop(), bigFile);
        const getMBps = mbps(bigFile, get.seconds);
        push(results.getMBps, server.name, getMBps);
        ctx.log(`  run ${run + 1} ${server.name}: put ${putMBps.toFixed(1)} MB/s, get ${getMBps.toFixed(1)} MB/s`);

        // Right after capstan's put, while the local file still holds exactly what was uploaded.
        if (dedupRun) {
          const started = performance.now();
          results.dedup = await dedupCheck(ctx, local, remote, storeBefore);
          results.setupSeconds['dedup check'] = (performance.now() - started) / 1000;
        }
      });
    },
    async cleanup() {
      await rm(local, { force: true });
    },
  };
}

/**
 * Workload 6: the store's growth from uploading again, under another name,
 * the bytes just uploaded, next to the growth that upload itself caused
 * (`storeBefore` was taken just before it; a get writes nothing).
 */
async function dedupCheck(ctx: BenchContext, local: string, remote: string, storeBefore: number) {
  const server = ctx.capstan;
  const beforeCopy = await treeBytes(server.storeDir);
  await timedBatch(ctx.client, server, [], [`put ${q(local)} ${q(`copy-of-${remote}`)}`]);
  const afterCopy = await treeBytes(server.storeDir);
  const dedup = { fileBytes: ctx.sizes.bigFile, firstUploadBytes: beforeCopy - storeBefore, secondUploadBytes: afterCopy - beforeCopy };
  ctx.log(
    `  dedup: the upload added ${dedup.firstUploadBytes} bytes to the store, a second upload of the same bytes ${dedup.secondUploadBytes}`,
  );
  return dedup;
}

/** Workload 5, second half: capstan's memory during one put of the huge file (capstan only: it is the gateway's memory). */
export function hugeFileWorkload(ctx: BenchContext, results: BenchResults): Workload {
  const { hugeFile } = ctx.sizes;
  const local = path.join(ctx.dataDir, 'huge.bin');
  return {
    name: 'huge',
    what: `capstan's memory during one ${hugeFile / 2 ** 20} MiB put`,
    repeatable: false,
    async prepare() {
      const started = performance.now();
      await writeRandomFile(local, hugeFile);
      results.setupSeconds['generate huge file'] = (performance.now() - started) / 1000;
    },
    async run() {
      await settle(ctx);
      ctx.capstanRss.start();
      try {
        const put = await timedBatch(ctx.client, ctx.capstan, [], [`put ${q(local)} huge.bin`]);
        results.rssHuge = ctx.capstanRss.stop();
        results.hugePutMBps = mbps(hugeFile, put.seconds);
        ctx.log(`  capstan: put ${results.hugePutMBps.toFixed(1)} MB/s, peak RSS ${results.rssHuge.peakRssMiB.toFixed(0)} MiB`);
      } finally {
        ctx.capstanRss.stopTimer();
        // 4 GiB of disk: freed at once, not at the end.
        await rm(local, { force: true });
      }
    },
    async cleanup() {
      await rm(local, { force: true });
    },
  };
}

/**
 * Workload 4: `clients` sftp sessions at once, each putting its own file;
 * aggregate MB/s over the span of their puts. The server's memory is taken
 * for capstan (the gateway's bound is a target) and rclone (for comparison):
 * the peak during the run, and the RSS once the clients are gone and `sync`
 * has returned (memory kept after a burst is memory a gateway holds).
 */
export function concurrentWorkload(ctx: BenchContext, results: BenchResults): Workload {
  const { clients, clientFile } = ctx.sizes;
  const locals = Array.from({ length: clients }, (_, i) => path.join(ctx.dataDir, `client-${i}.bin`));
  return {
    name: 'concurrent',
    what: `${clients} clients each putting ${clientFile / 2 ** 20} MiB at once`,
    repeatable: true,
    async prepare() {
      const started = performance.now();
      for (const f of locals) await writeRandomFile(f, clientFile);
      results.setupSeconds['generate client files'] = (performance.now() - started) / 1000;
    },
    async run(run) {
      await forEachServer(ctx, results, 'concurrent', run, async (server) => {
        for (const f of locals) await stampFile(f, clientFile);
        await settle(ctx);
        const memory = server.name === 'OpenSSH' ? undefined : new ProcRssSampler(server.pid);
        const before = memory ? rssMiB(server.pid) : undefined;
        if (before !== undefined) push(results.concurrentBeforeMiB, server.name, before);
        memory?.start();
        let all: Awaited<ReturnType<typeof timedBatch>>[];
        try {
          all = await Promise.all(
            locals.map((f, i) => timedBatch(ctx.client, server, [], [`put ${q(f)} ${q(`client-r${run}-${i}.bin`)}`])),
          );
        } finally {
          memory?.stopTimer();
        }
        if (memory) push(results.concurrentPeakMiB, server.name, peakMiB(memory.stop()));
        await settle(ctx);
        const after = rssMiB(server.pid);
        if (memory && after !== undefined) push(results.concurrentAfterMiB, server.name, after);
        // From the first session's start mark to the last one's end mark.
        const start = all.reduce((min, r) => (r.startNs < min ? r.startNs : min), all[0]!.startNs);
        const end = all.reduce((max, r) => (r.endNs > max ? r.endNs : max), all[0]!.endNs);
        const value = mbps(clients * clientFile, Number(end - start) / 1e9);
        push(results.concurrentMBps, server.name, value);
        const rss = memory
          ? `, RSS before ${before?.toFixed(0)} MiB, peak ${results.concurrentPeakMiB[server.name]!.at(-1)!.toFixed(0)} MiB, after ${after?.toFixed(0)} MiB`
          : '';
        ctx.log(`  run ${run + 1} ${server.name}: ${value.toFixed(1)} MB/s aggregate${rss}`);
      });
    },
    async cleanup() {
      for (const f of locals) await rm(f, { force: true });
    },
  };
}
