import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { run } from './openssh.js';

/**
 * A local tree whose names test that a server keeps names byte for byte:
 * NFD and NFC spellings of one word side by side, mixed normalization in
 * one name, and 255-byte names (ASCII, and 85 × `e` + U+0301 in NFD).
 */
export const NFD = 'cafe\u0301';
export const NFC = 'caf\u00e9';

export const NAME_TREE: Record<string, string[]> = {
  '': [`${NFD}.txt`, `${NFC}.txt`, `${'n'.repeat(251)}.txt`, 'e\u0301'.repeat(85), `mixed ${NFC} ${NFD}.md`],
  [`dir ${NFD}`]: [`${NFC} inside NFD dir`, 'plain'],
  [`dir ${NFC}`]: [`${NFD} inside NFC dir`],
};

/** Names as their UTF-8 bytes in hex, sorted, so an assertion shows what differs. */
export const nameBytes = (names: string[]): string[] => names.map((n) => Buffer.from(n, 'utf8').toString('hex')).sort();

/** What a directory of NAME_TREE should list: its files, and at the top the subdirectories too. */
export function expectedNames(dir: string): string[] {
  const subdirs = dir === '' ? Object.keys(NAME_TREE).filter((d) => d !== '') : [];
  return [...(NAME_TREE[dir] ?? []), ...subdirs];
}

export async function makeNameTree(src: string): Promise<void> {
  for (const [dir, files] of Object.entries(NAME_TREE)) {
    await mkdir(join(src, dir), { recursive: true });
    for (const name of files) await writeFile(join(src, dir, name), randomBytes(100 + name.length));
  }
}

/**
 * `rsync -a src/ dest/` then `rsync -a --delete --itemize-changes src/ dest/`:
 * the second run must change nothing (no file sent again, nothing deleted),
 * and every directory must list exactly the source's names, byte for byte.
 */
export async function expectRsyncKeepsNames(src: string, dest: string): Promise<void> {
  const first = await run('rsync', ['-a', `${src}/`, `${dest}/`], { timeoutMs: 120_000 });
  expect(first.code, first.stderr).toBe(0);
  const second = await run('rsync', ['-a', '--delete', '--itemize-changes', `${src}/`, `${dest}/`], { timeoutMs: 120_000 });
  expect(second.code, second.stderr).toBe(0);
  expect(second.stdout.split('\n').filter((l) => l !== '')).toEqual([]);
  for (const dir of Object.keys(NAME_TREE)) expect(nameBytes(await readdir(join(dest, dir)))).toEqual(nameBytes(expectedNames(dir)));
}
