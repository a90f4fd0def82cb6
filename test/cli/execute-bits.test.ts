import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DirectoryWriteCap, parseCap } from '../../src/cap/index.js';
import { withNode } from '../../src/cli/context.js';
import { cliAt, makeTempDir, stopAllCli } from '../helpers/cli.js';

/**
 * The CLI and a file's execute bits (set here through the tree, as an SFTP
 * chmod +x sets them): `ls --json` and `ls -l` show them, and `put` over
 * the file keeps them, as an SFTP upload does.
 */
let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;
const { ok } = cliAt(() => node);

const listed = async (): Promise<Record<string, unknown>[]> =>
  (await ok(['ls', '--json', root]))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  tmp = await makeTempDir('capstan-cli-xbits-');
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  root = (await ok(['mkdir'])).trim();
  await ok(['put', '-', `${root}/run.sh`], Buffer.from('#!/bin/sh\n'));
  await ok(['put', '-', `${root}/data`], Buffer.from('data\n'));
  await ok(['mkdir', `${root}/dir`]);
  await withNode({ nodeDir: node }, (opened) =>
    opened.tree.directory(parseCap(root) as DirectoryWriteCap).setMetadata('run.sh', { executable: true }),
  );
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('CLI and execute bits', () => {
  it('ls --json shows executable; put over the file keeps it', async () => {
    const flags = async () => Object.fromEntries((await listed()).map((e) => [e['name'], e['executable']]));
    expect(await flags()).toEqual({ 'run.sh': true, data: false, dir: false });
    await ok(['put', '-', `${root}/run.sh`], Buffer.from('#!/bin/sh\necho two\n'));
    expect(await flags()).toEqual({ 'run.sh': true, data: false, dir: false });
    expect((await listed()).find((e) => e['name'] === 'run.sh')).toMatchObject({ size: 19, executable: true });
  });

  it('ls -l shows rwx for an executable file', async () => {
    const long = await ok(['ls', '-l', root]);
    expect(long).toMatch(/^file {4}rwx {13}19 \S+ run\.sh$/m);
    expect(long).toMatch(/^file {4}rw {15}5 \S+ data$/m);
    expect(long).toMatch(/^dir {5}rw {15}- \S+ dir\/$/m);
  });
});
