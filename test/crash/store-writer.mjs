// Child process for store-kill.test.ts: writes to an FsChunkStore and a
// LevelSlotStore as fast as it can and reports each acknowledged write on
// stdout, until it is SIGKILLed. Imports the built stores (dist/).
import { createHash, randomBytes } from 'node:crypto';
import { FsChunkStore, LevelSlotStore } from '../../dist/store/index.js';

const [dir] = process.argv.slice(2);
const chunks = await FsChunkStore.open(`${dir}/chunks`);
const slots = await LevelSlotStore.open(`${dir}/slots`);
const index = new Uint8Array(32).fill(9);
const recordFor = (seq) => createHash('sha512').update(`record ${seq}`).digest();
let seq = (await slots.get(index))?.seq ?? null;
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const bytes = randomBytes(1 + Math.floor(Math.random() * 200_000));
  const address = await chunks.put(bytes);
  process.stdout.write(`chunk ${address.toString()} ${createHash('sha256').update(bytes).digest('hex')}\n`);
  const next = seq === null ? 1n : seq + 1n;
  await slots.compareAndSwap(index, seq, { seq: next, record: recordFor(next) });
  seq = next;
  process.stdout.write(`slot ${next}\n`);
}
