import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DirectoryWriteCap, parseCap } from '../../src/cap/index.js';
import { LevelSlotStore } from '../../src/store/index.js';
import { makeTempDir, runCli, stopAllCli, cliAt } from '../helpers/cli.js';
import { flipObjectByte, loseObject, packedObjects } from '../helpers/packs.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;

const { ok } = cliAt(() => node);

beforeAll(async () => {
  tmp = await makeTempDir();
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  // Small chunks, so a file has several and one can be damaged on its own.
  const cfgPath = path.join(node, 'capstan.cfg');
  await writeFile(cfgPath, (await readFile(cfgPath, 'utf8')).replace(/^chunk_size = .*$/m, 'chunk_size = 64KiB'));
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('capstan check', () => {
  it('reports all well, then a deleted chunk, then (with --verify) a flipped byte', async () => {
    const root = (await ok(['mkdir'])).trim();
    await ok(['mkdir', '-p', `${root}/a/b`]);
    const local = path.join(tmp.dir, 'data.bin');
    await writeFile(local, randomBytes(64 * 1024 * 4 + 100));
    await ok(['put', local, `${root}/a/b/data.bin`]);
    await ok(['put', '-', `${root}/small.txt`], 'tiny');

    const good = await runCli(['-d', node, 'check', root]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toBe('checked 3 directories, 2 files, 5 chunks: all well\n');
    const verified = await runCli(['-d', node, 'check', '--verify', root]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^verified 3 directories, 2 files, 5 chunks: all well\n$/);

    // Flip one byte of a full-size data chunk in its pack: same size, so only --verify notices.
    const objects = await packedObjects(node);
    const [first, second] = objects;
    expect(first!.location.length).toBe(second!.location.length); // two full 64 KiB chunks (plus the GCM tag)
    await flipObjectByte(first!, 1000);
    const shallow = await runCli(['-d', node, 'check', root]);
    expect(shallow.code).toBe(0);
    const deep = await runCli(['-d', node, 'check', '--verify', root]);
    expect(deep.code).not.toBe(0);
    expect(deep.stderr).toMatch(/^capstan: corrupt: a\/b\/data\.bin: chunk \d of 5 \(b[a-z2-7]+\)$/m);
    expect(deep.stdout).toMatch(/: 1 problem\n$/);

    // Lose another chunk: a plain check reports it missing.
    await loseObject(node, second!);
    const missing = await runCli(['-d', node, 'check', root]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/^capstan: missing: a\/b\/data\.bin: chunk \d of 5 /m);
    expect(missing.stderr).not.toMatch(/CS1:/);
    const both = await runCli(['-d', node, 'check', '--verify', `${root}/a`]);
    expect(both.code).not.toBe(0);
    expect(both.stdout).toMatch(/: 2 problems\n$/);
    // the check of an undamaged file is still fine
    expect((await runCli(['-d', node, 'check', `${root}/small.txt`])).code).toBe(0);
  });

  it('reports a directory whose slot signature does not verify', async () => {
    const root = (await ok(['mkdir'])).trim();
    await ok(['mkdir', `${root}/sub`]);
    const sub = (await ok(['readonly', `${root}/sub`])).trim();
    expect((await runCli(['-d', node, 'check', root])).code).toBe(0);

    // Tamper with the signed record of sub's slot, as a malicious store could.
    const subCap = parseCap((await ok(['mkdir', '-p', `${root}/sub`])).trim()) as DirectoryWriteCap;
    const slots = await LevelSlotStore.open(path.join(node, 'store/slots'));
    try {
      const entry = (await slots.get(subCap.storageIndex))!;
      const record = entry.record.slice();
      record[record.length - 1] = record[record.length - 1]! ^ 0x01;
      await slots.compareAndSwap(subCap.storageIndex, entry.seq, { seq: entry.seq + 1n, record });
    } finally {
      await slots.close();
    }
    const r = await runCli(['-d', node, 'check', root]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toBe('capstan: corrupt: sub: directory\n');
    expect(r.stdout).toMatch(/: 1 problem\n$/);
    const direct = await runCli(['-d', node, 'check', sub]);
    expect(direct.code).not.toBe(0);
    expect(direct.stderr).toBe('capstan: corrupt: (root): directory\n');
  });
});
