import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCliBinary, stopAllCli, cliAt } from '../helpers/cli.js';
import { agePackedObjects, packedObjects } from '../helpers/packs.js';

/**
 * `capstan cp` on a node with no gateway running (the embedded default,
 * opened by the command itself). `sftp cp` through a gateway is in
 * test/sftp/openssh-sftp.test.ts and test/sftp/copy-data.test.ts.
 */

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;

const { ok, fails } = cliAt(() => node);

async function bytesOf(capPath: string): Promise<Buffer> {
  const r = await runCliBinary(['-d', node, 'get', capPath, '-']);
  expect(r.code).toBe(0);
  return r.stdoutBytes;
}

beforeAll(async () => {
  tmp = await makeTempDir();
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  root = (await ok(['mkdir'])).trim();
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('capstan cp', () => {
  it('copies a file byte for byte as the same immutable file, storing no chunk again', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 5);
    const cap = (await ok(['put', '-', `${root}/src.bin`], content)).trim();
    await ok(['mkdir', `${root}/dir`]);
    // Every object the store has now looks an hour old: a put of any of them again would make it new.
    await agePackedObjects(node, 3_600_000);
    const before = new Map((await packedObjects(node)).map((o) => [o.address.toString(), o.lastPutSec]));
    await ok(['cp', `${root}/src.bin`, `${root}/dir/copy.bin`]);
    await ok(['cp', `${root}/src.bin`, `${root}/dir`]); // into a directory: the source's name
    const after = await packedObjects(node);
    for (const o of after)
      if (before.has(o.address.toString())) expect(o.lastPutSec, 'an object stored again').toBe(before.get(o.address.toString()));
    expect(after.length - before.size).toBeLessThanOrEqual(4); // directory nodes only
    expect((await ok(['readonly', `${root}/dir/copy.bin`])).trim()).toBe(cap);
    expect((await ok(['readonly', `${root}/dir/src.bin`])).trim()).toBe(cap);
    expect((await bytesOf(`${root}/dir/copy.bin`)).equals(content)).toBe(true);
    expect((await bytesOf(`${root}/src.bin`)).equals(content)).toBe(true);
    // The copy is a name of its own: replacing it leaves the source alone.
    await ok(['put', '-', `${root}/dir/copy.bin`], 'changed');
    expect((await bytesOf(`${root}/src.bin`)).equals(content)).toBe(true);
  });

  it('replaces an existing file, copies a bare file cap, and prints a document with --json', async () => {
    const first = (await ok(['put', '-', `${root}/a.txt`], 'first')).trim();
    await ok(['put', '-', `${root}/b.txt`], 'second');
    const doc = JSON.parse(await ok(['cp', '--json', `${root}/a.txt`, `${root}/b.txt`])) as Record<string, unknown>;
    expect(doc).toEqual({ name: 'b.txt', size: 5, replaced: true });
    expect((await bytesOf(`${root}/b.txt`)).toString()).toBe('first');
    await ok(['cp', first, `${root}/from-cap.txt`]);
    expect((await bytesOf(`${root}/from-cap.txt`)).toString()).toBe('first');
  });

  it('refuses directories, read-only targets and bad input with one line that holds no cap', async () => {
    await ok(['mkdir', `${root}/d`]);
    await ok(['put', '-', `${root}/f.txt`], 'f');
    expect(await fails(['cp', `${root}/d`, `${root}/d2`])).toMatch(/source is a directory: cp copies files \(capstan ln shares/);
    expect(await fails(['cp', `${root}/missing.txt`, `${root}/x`])).toMatch(/missing\.txt: no such file or directory/);
    expect(await fails(['cp', `${root}/f.txt`, `${root}/nope/x`])).toMatch(/nope: no such directory|no such file or directory/);
    const fileCap = (await ok(['readonly', `${root}/f.txt`])).trim();
    expect(await fails(['cp', fileCap, root])).toMatch(/DIRCAP\/NAME/);
    expect(await fails(['cp', `${root}/f.txt`, root])).toMatch(/same file/);
    const readCap = (await ok(['readonly', root])).trim();
    expect(await fails(['cp', `${root}/f.txt`, `${readCap}/g.txt`])).toMatch(/read-only/);
    expect(await ok(['ls', root])).not.toMatch(/^(d2|x|g\.txt)$/m);
  });
});
