import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNodeConfig } from '../../src/cli/context.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { LevelSlotStore } from '../../src/store/slots/level.js';
import { createTree } from '../../src/tree/index.js';
import { makeTempDir, runCliBinary, startCli, stopAllCli, cliAt } from '../helpers/cli.js';

/**
 * `capstan repack` on a node an earlier version wrote (loose chunk files,
 * LevelDB slots, no packs): counted dry, moved while the gateway runs
 * (through its socket), and every file reads back byte-identical, through
 * the CLI and `check --verify`, with nothing left loose.
 */

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;
const files = new Map<string, Buffer>();

const { ok } = cliAt(() => node);

/** Files of the loose layouts under the fs store's root (its packs/ folder aside). */
async function looseFiles(fsDir: string): Promise<string[]> {
  const entries = await readdir(fsDir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && !path.relative(fsDir, e.parentPath).startsWith('packs')).map((e) => e.name);
}

beforeAll(async () => {
  tmp = await makeTempDir();
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  // What a node of an earlier version holds: its tree written to loose chunk files and plain LevelDB slots.
  const config = await loadNodeConfig({ nodeDir: node });
  const chunks = await FsChunkStore.open(config.storage.fsDir, { fsync: false });
  const slots = await LevelSlotStore.open(config.storage.slotsDir);
  const tree = createTree({ chunks, slots, chunkSize: 256 * 1024 });
  const cap = await tree.createDirectory();
  root = cap.toString();
  files.set('small.txt', Buffer.from('written by an earlier layout\n'));
  files.set('big.bin', randomBytes(1_500_000));
  for (let i = 0; i < 6; i++) files.set(`n${i}.bin`, randomBytes(100 + i * 500));
  for (const [name, bytes] of files) {
    const writer = tree.createFileWriter(randomBytes(32));
    await writer.write(bytes);
    const { cap: fileCap } = await writer.finish();
    const now = Date.now();
    await tree.directory(cap).link(name, fileCap, { size: bytes.length, mtimeMs: now, ctimeMs: now });
  }
  await slots.close();
  await chunks.close();
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('capstan repack', () => {
  it('moves a legacy node into packs while the gateway runs; every file reads back and nothing stays loose', async () => {
    const config = await loadNodeConfig({ nodeDir: node });
    const before = (await looseFiles(config.storage.fsDir)).length;
    expect(before).toBeGreaterThan(files.size);
    expect(await ok(['repack', '--dry-run'])).toMatch(new RegExp(`^would move ${before} loose chunks \\(\\d+ bytes\\) into packs`));
    expect((await looseFiles(config.storage.fsDir)).length).toBe(before);

    const gateway = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    await gateway.waitFor(/^capstan listening on /m);
    // A file uploaded through the running gateway first: packed, and still there afterwards.
    await ok(['put', '-', `${root}/during.txt`], 'put beside the repack\n');
    expect(await ok(['repack'])).toMatch(new RegExp(`^moved ${before} loose chunks \\(\\d+ bytes\\) into packs; removed 0 `));
    expect(await looseFiles(config.storage.fsDir)).toEqual([]);
    for (const [name, bytes] of files) {
      const got = await runCliBinary(['-d', node, 'get', `${root}/${name}`, '-']);
      expect(got.code).toBe(0);
      expect(got.stdoutBytes.equals(bytes)).toBe(true);
    }
    expect(await ok(['get', `${root}/small.txt`])).toBe('written by an earlier layout\n');
    expect(await ok(['check', '--verify', root])).toMatch(/all well/);
    await gateway.stop();

    // Offline now, and nothing left to do.
    expect(await ok(['repack'])).toBe('nothing to repack: no loose chunk files of an older layout\n');
    expect(await ok(['get', `${root}/during.txt`])).toBe('put beside the repack\n');
    expect(await ok(['check', '--verify', root])).toMatch(/all well/);
  }, 120_000);
});
