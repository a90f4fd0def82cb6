// Child process for snapshot-kill.test.ts: swaps four slots of the embedded
// default's engine (journal slot store) as fast as it can while taking a pin
// every few milliseconds, reporting what was acknowledged on stdout, until it
// is SIGKILLed. Imports the built code (dist/).
import { createHash } from 'node:crypto';
import { LocalEngine } from '../../dist/store/packs/local-engine.js';

const [dir] = process.argv.slice(2);
const engine = await LocalEngine.open({ slotsDir: `${dir}/slots`, packsDir: `${dir}/packs`, packBytes: 256 * 1024 });
const slots = engine.slots;
const SLOTS = 4;
const index = (i) => new Uint8Array(32).fill(i + 1);
const recordFor = (i, seq) => createHash('sha512').update(`slot ${i} record ${seq}`).digest();
const acked = [];
const started = [];
for (let i = 0; i < SLOTS; i++) {
  const seq = (await slots.get(index(i)))?.seq ?? 0n;
  acked.push(seq);
  started.push(seq);
}
process.stdout.write('ready\n');

async function chain(i) {
  for (;;) {
    const next = started[i] + 1n;
    started[i] = next;
    await slots.compareAndSwap(index(i), next === 1n ? null : next - 1n, { seq: next, record: recordFor(i, next) });
    acked[i] = next;
    process.stdout.write(`slot ${i} ${next}\n`);
  }
}

async function pins() {
  for (let n = 0; ; n++) {
    const low = acked.join(',');
    const pin = await slots.history.pin(new Uint8Array(32).fill(99), n);
    // Swaps started from now on must not be seen at this pin: `high` is the last one started before.
    const high = started.join(',');
    // What the pin reads now: it must read the same for ever after, crashes included.
    const seen = [];
    for (let i = 0; i < SLOTS; i++) seen.push((await slots.history.getAt(index(i), pin.epoch))?.seq ?? 0n);
    process.stdout.write(`pin ${pin.epoch} ${low} ${high} ${seen.join(',')}\n`);
    await new Promise((r) => setTimeout(r, 3));
  }
}

await Promise.all([...Array.from({ length: SLOTS }, (_, i) => chain(i)), pins()]);
