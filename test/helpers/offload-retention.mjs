// Hashes `count` distinct 1 MiB chunks in shared memory on an offload thread (sha256Shared, as an
// upload's address check does; or preadSha256Shared, as a download's read does), drops them,
// collects on this thread and prints how many MiB the process's RSS grew by. Run by
// test/crypto/offload-retention.test.ts against the built modules:
// node --expose-gc --single-threaded-gc offload-retention.mjs DIST sha256|pread COUNT
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, op, countArg] = process.argv.slice(2);
const count = Number(countArg);
const load = (module) => import(pathToFileURL(path.join(dist, module)).href);
const { preadSha256Shared, sha256Shared, startOffloadThreads } = await load('crypto/offload.js');
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const MiB = 1024 * 1024;

await startOffloadThreads();
const file = path.join(tmpdir(), `capstan-offload-retention-${process.pid}`);
writeFileSync(file, Buffer.alloc(MiB, 7));
const fd = openSync(file, 'r');
try {
  const one = async () => {
    const view = new Uint8Array(new SharedArrayBuffer(MiB));
    view.fill(1);
    if (op === 'pread') {
      if ((await preadSha256Shared(fd, 0, view)) === undefined) throw new Error('no idle offload thread');
    } else await sha256Shared(view);
  };
  await one();
  globalThis.gc();
  const before = rssMiB();
  // Each chunk dead on this thread as soon as it was hashed: only the offload thread could keep it.
  for (let i = 0; i < count; i++) {
    await one();
    globalThis.gc({ type: 'minor' });
  }
  globalThis.gc();
  // The thread's answer to the last request may still be on its way.
  await new Promise((resolve) => setTimeout(resolve, 100));
  globalThis.gc();
  process.stdout.write(`${Math.round(rssMiB() - before)}\n`);
} finally {
  closeSync(fd);
  rmSync(file, { force: true });
}
process.exit(0);
