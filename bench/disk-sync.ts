import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * How long the disk under the benchmark takes to make a small append
 * durable: a 4 KiB write at the end of one file then fdatasync (the file grows,
 * as capstan's journal does), `rounds` times, the median in milliseconds.
 *
 * Why the report states it: capstan acknowledges an upload's CLOSE only once
 * the commit is durable (one fdatasync per commit; concurrent commits share
 * it), and `sftp put` sends its files one after another. So that client gets
 * at most 1 / this latency files per second from any server that syncs;
 * OpenSSH's sftp server never syncs. The small-file ratio is read against
 * that bound.
 */
export function diskSyncMs(dir: string, rounds = 200): number {
  const file = path.join(dir, '.sync-probe');
  const block = Buffer.alloc(4096, 0x5a);
  const fd = openSync(file, 'w');
  const samples: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      writeSync(fd, block, 0, block.length, i * block.length);
      fdatasyncSync(fd);
      samples.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}
