import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DirectoryWriteCap, parseCap, SymlinkTarget } from '../../src/cap/index.js';
import { loadConfig } from '../../src/config/load.js';
import { openNode } from '../../src/node/open.js';
import { CAP_IN_TEXT, makeTempDir, REPO, runCli, cliAt, runCliBinary, stopAllCli } from '../helpers/cli.js';

/**
 * The CLI and symbolic links (made here through the tree, as a gateway
 * makes them): `ls -l` and `ls --json` show them, `get` follows them inside
 * the cap and no further, and `check` finds nothing wrong with a link.
 */
let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;
const content = randomBytes(150_000);

const cli = (args: string[]) => runCli(['-d', node, ...args]);
const { ok } = cliAt(() => node);

beforeAll(async () => {
  tmp = await makeTempDir('capstan-cli-links-');
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  root = (await ok(['mkdir'])).trim();
  await ok(['mkdir', `${root}/d`]);
  await ok(['mkdir', `${root}/etc`]);
  await ok(['put', '-', `${root}/d/f`], content);
  await ok(['put', '-', `${root}/etc/passwd`], Buffer.from('inside the cap\n'));
  const opened = await openNode(await loadConfig(node));
  try {
    const cap = parseCap(root) as DirectoryWriteCap;
    const meta = (t: string) => ({ size: Buffer.byteLength(t), mtimeMs: 1_700_000_000_000, ctimeMs: 1_700_000_000_000 });
    const link = async (name: string, target: string) =>
      opened.tree.directory(cap).link(name, new SymlinkTarget(Buffer.from(target)), meta(target));
    await link('link', 'd/f');
    await link('dirlink', 'd');
    await link('evil', '../../../etc/passwd');
    await link('dangling', 'no/such');
    await link('loop', 'loop');
  } finally {
    await opened.close();
  }
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('CLI and symbolic links', () => {
  it('ls -l shows link and the target; ls --json has type symlink and target', async () => {
    const long = await ok(['ls', '-l', root]);
    expect(long).toMatch(/^link {4}rw +3 2023-11-14T22:13:20Z link -> d\/f$/m);
    expect(long).toMatch(/ evil -> \.\.\/\.\.\/\.\.\/etc\/passwd$/m);
    const json = (await ok(['ls', '--json', root]))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json.find((e) => e['name'] === 'link')).toEqual({
      name: 'link',
      type: 'symlink',
      target: 'd/f',
      size: 3,
      mtime: '2023-11-14T22:13:20.000Z',
      readonly: false,
      executable: false,
    });
    expect(json.find((e) => e['name'] === 'd')).not.toHaveProperty('target');
    const doc = (await readFile(path.join(REPO, 'docs/cli-json.md'), 'utf8'))
      .split(/^## /m)
      .find((x) => x.startsWith('`capstan ls --json'));
    for (const field of Object.keys(json.find((e) => e['name'] === 'link')!)) expect(doc).toContain(`| \`${field}\` |`);
    // A plain ls of a directory link lists the directory it leads to.
    expect(await ok(['ls', `${root}/dirlink`])).toBe('f\n');
  });

  it('get follows links inside the cap: byte-identical, an escaping link reaches only the cap', async () => {
    for (const via of ['link', 'dirlink/f']) {
      const r = await runCliBinary(['-d', node, 'get', `${root}/${via}`]);
      expect(r.code).toBe(0);
      expect(r.stdoutBytes).toEqual(content);
    }
    expect(await ok(['get', `${root}/evil`])).toBe('inside the cap\n');
    const dangling = await cli(['get', `${root}/dangling`]);
    expect(dangling.code).not.toBe(0);
    expect(dangling.stderr).not.toMatch(CAP_IN_TEXT);
    const loop = await cli(['get', `${root}/loop`]);
    expect(loop.code).not.toBe(0);
    expect(loop.stderr).toMatch(/symbolic links/);
    expect(loop.stderr).not.toMatch(CAP_IN_TEXT);
  });

  it('check walks a tree with links and reports no problem', async () => {
    const r = await cli(['check', root]);
    expect(r.stderr).not.toMatch(CAP_IN_TEXT);
    expect(r.code).toBe(0);
  });
});
