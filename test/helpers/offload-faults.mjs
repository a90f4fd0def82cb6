// Opens one 1 MiB chunk 200 times on an offload thread, as a download does, and prints the
// process's minor page faults per chunk. Run by test/node/malloc-thresholds.test.ts against the
// built modules: node --expose-gc --single-threaded-gc offload-faults.mjs DIST raise|none
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dist, mode] = process.argv.slice(2);
const load = (module) => import(pathToFileURL(path.join(dist, module)).href);
const { raiseMallocThresholds } = await load('node/malloc-thresholds.js');
const { openConvergentShared, startOffloadThreads } = await load('crypto/offload.js');
const { sealConvergent } = await load('crypto/aead.js');
const faults = () => Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);

if (mode === 'raise') raiseMallocThresholds();
await startOffloadThreads();
const key = randomBytes(32);
const sealed = sealConvergent(key, randomBytes(1024 * 1024));
const view = new Uint8Array(new SharedArrayBuffer(sealed.length));
view.set(sealed);
await openConvergentShared(key, view);
const rounds = 200;
const before = faults();
for (let i = 0; i < rounds; i++) {
  view.set(sealed);
  await openConvergentShared(key, view);
}
process.stdout.write(`${(faults() - before) / rounds}\n`);
process.exit(0);
