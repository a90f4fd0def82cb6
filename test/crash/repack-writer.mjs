// Child process for repack-kill.test.ts: opens the embedded default's engine
// over a node with loose chunk files and repacks them in small steps, each
// reported on stdout, until done or SIGKILLed. Imports the built code (dist/).
import { FsChunkStore } from '../../dist/store/chunks/fs/fs-chunk-store.js';
import { LocalEngine } from '../../dist/store/packs/local-engine.js';

const [dir] = process.argv.slice(2);
const engine = await LocalEngine.open({
  slotsDir: `${dir}/slots`,
  packsDir: `${dir}/packs`,
  legacy: await FsChunkStore.open(`${dir}/chunks`),
  packBytes: 256 * 1024,
});
process.stdout.write('ready\n');
for (;;) {
  const step = await engine.chunks.repack({ limit: 5 });
  process.stdout.write(`step ${step.moved} ${step.dropped}\n`);
  if (step.moved + step.dropped === 0) break;
}
await engine.close();
process.stdout.write('done\n');
