import { rm } from 'node:fs/promises';
import path from 'node:path';
import { forEachServer, push, settle, type BenchContext, type BenchResults } from './context.js';
import { writeRandomFile } from './data.js';
import type { Workload } from './schedule.js';
import { q, sftpBatch, timedBatch } from './sftp.js';

/**
 * `sftp cp` (the copy-data extension) of a small and a big file, on the
 * server. capstan relinks the same immutable file, so both should take the
 * same few milliseconds; OpenSSH's server copies the bytes (its time grows
 * with the size), shown for comparison. `rclone serve sftp` has no
 * copy-data, so the workload does not apply to it.
 */
export function copyWorkload(ctx: BenchContext, results: BenchResults): Workload {
  const { copySmall, copyBig } = ctx.sizes;
  const files = [
    { bytes: copySmall, local: path.join(ctx.dataDir, 'copy-small.bin'), remote: 'copy-small.bin', samples: results.copySmallMs },
    { bytes: copyBig, local: path.join(ctx.dataDir, 'copy-big.bin'), remote: 'copy-big.bin', samples: results.copyBigMs },
  ];
  const uploaded = new Set<string>();
  return {
    name: 'copy',
    what: `sftp cp (copy-data) of a ${copySmall / 2 ** 20} MiB and a ${copyBig / 2 ** 20} MiB file on the server`,
    repeatable: true,
    async prepare() {
      const started = performance.now();
      for (const f of files) await writeRandomFile(f.local, f.bytes);
      results.setupSeconds['generate copy sources'] = (performance.now() - started) / 1000;
      (results.notApplicable['copy'] ??= {}).rclone = 'rclone serve sftp has no copy-data extension (sftp cp)';
    },
    async run(run) {
      await forEachServer(ctx, results, 'copy', run, async (server) => {
        if (!uploaded.has(server.name)) {
          await sftpBatch(
            ctx.client,
            server,
            files.map((f) => `put ${q(f.local)} ${q(f.remote)}`),
          );
          uploaded.add(server.name);
        }
        const line: string[] = [];
        for (const f of files) {
          const copy = `copy-r${run}-${f.remote}`;
          await settle(ctx);
          // The copy is removed in the same session, untimed: OpenSSH's copies would fill the disk.
          const timed = await timedBatch(ctx.client, server, [], [`cp ${q(f.remote)} ${q(copy)}`], [`rm ${q(copy)}`]);
          push(f.samples, server.name, timed.seconds * 1000);
          line.push(`${f.bytes / 2 ** 20} MiB ${(timed.seconds * 1000).toFixed(1)} ms`);
        }
        ctx.log(`  run ${run + 1} ${server.name}: cp ${line.join(', ')}`);
      });
    },
    async cleanup() {
      for (const f of files) await rm(f.local, { force: true });
    },
  };
}
