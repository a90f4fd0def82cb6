import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, oneErrorLine, runCli, runCliBinary, stopAllCli, cliAt } from '../helpers/cli.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let root: string;

const { ok } = cliAt(() => node);

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

describe('direct file commands', () => {
  it('mkdir with no argument prints a new directory write cap', () => {
    expect(root).toMatch(/^CS1:DIR:[a-z2-7]+$/);
  });

  it('mkdir creates a path (parents only with -p) and prints its cap', async () => {
    const noParents = await runCli(['-d', node, 'mkdir', `${root}/x/y`]);
    expect(noParents.code).not.toBe(0);
    expect(oneErrorLine(noParents)).toMatch(/^capstan: x: no such directory \(use -p/);

    const made = (await ok(['mkdir', '-p', `${root}/docs/2024/q1`])).trim();
    expect(made).toMatch(/^CS1:DIR:/);
    expect(await ok(['ls', `${root}/docs`])).toBe('2024/\n');
    // -p on an existing directory is fine and prints the same cap
    expect((await ok(['mkdir', '-p', `${root}/docs/2024/q1`])).trim()).toBe(made);
    const again = await runCli(['-d', node, 'mkdir', `${root}/docs`]);
    expect(again.code).not.toBe(0);
    oneErrorLine(again);
  });

  it('names are kept byte for byte: put, ls, mv and get with NFD and NFC spellings', async () => {
    const nfd = 'cafe\u0301.txt';
    const nfc = 'caf\u00e9.txt';
    const names = (await ok(['mkdir'])).trim(); // a root of its own: the tests below list `root`
    await ok(['put', '-', `${names}/${nfd}`], 'decomposed');
    await ok(['put', '-', `${names}/${nfc}`], 'composed');
    const listed = (await ok(['ls', names])).split('\n').filter((l) => l !== '');
    expect(listed.map((n) => Buffer.from(n).toString('hex')).sort()).toEqual([nfc, nfd].map((n) => Buffer.from(n).toString('hex')).sort());
    await ok(['mv', `${names}/${nfd}`, `${names}/${nfd}.moved`]);
    expect(await ok(['get', `${names}/${nfd}.moved`, '-'])).toBe('decomposed');
    expect(await ok(['get', `${names}/${nfc}`, '-'])).toBe('composed');
  });

  it('put and get round-trip a file, and stdin/stdout with -', async () => {
    const local = path.join(tmp.dir, 'big.bin');
    const content = randomBytes(300_000);
    await writeFile(local, content);
    const cap = (await ok(['put', local, `${root}/docs/big.bin`])).trim();
    expect(cap).toMatch(/^CS1:CHK:/);

    const out = path.join(tmp.dir, 'out.bin');
    await ok(['get', `${root}/docs/big.bin`, out]);
    expect((await readFile(out)).equals(content)).toBe(true);

    const viaStdout = await runCliBinary(['-d', node, 'get', `${root}/docs/big.bin`, '-']);
    expect(viaStdout.code).toBe(0);
    expect(viaStdout.stdoutBytes.equals(content)).toBe(true);
    const noLocal = await runCliBinary(['-d', node, 'get', `${root}/docs/big.bin`]);
    expect(noLocal.stdoutBytes.equals(content)).toBe(true);
    // a bare file cap works too
    const byCap = await runCliBinary(['-d', node, 'get', cap]);
    expect(byCap.stdoutBytes.equals(content)).toBe(true);

    const piped = randomBytes(5_000);
    await ok(['put', '-', `${root}/docs/piped.bin`], piped);
    const back = await runCliBinary(['-d', node, 'get', `${root}/docs/piped.bin`, '-']);
    expect(back.stdoutBytes.equals(piped)).toBe(true);

    // small files live in their cap
    expect((await ok(['put', '-', `${root}/hello.txt`], 'hello\n')).trim()).toMatch(/^CS1:LIT:/);
    expect(await ok(['get', `${root}/hello.txt`])).toBe('hello\n');
    // put replaces
    await ok(['put', '-', `${root}/hello.txt`], 'hello again\n');
    expect(await ok(['get', `${root}/hello.txt`])).toBe('hello again\n');
  });

  it('ls lists sorted names, -l with kind, size and time', async () => {
    expect(await ok(['ls', root])).toBe('docs/\nhello.txt\n');
    const long = await ok(['ls', '-l', `${root}/docs`]);
    const lines = long.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^dir +rw +- +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 2024\/$/);
    expect(lines[1]).toMatch(/^file +rw +300000 +\S+ big\.bin$/);
    expect(lines[2]).toMatch(/^file +rw +5000 +\S+ piped\.bin$/);
    expect(await ok(['ls', `${root}/hello.txt`])).toBe('hello.txt\n');
    expect(long).not.toMatch(/CS1:/);
  });

  it('mv renames, moves into a directory, and across caps', async () => {
    await ok(['mv', `${root}/hello.txt`, `${root}/greeting.txt`]);
    expect(await ok(['ls', root])).toBe('docs/\ngreeting.txt\n');
    await ok(['mv', `${root}/greeting.txt`, `${root}/docs`]);
    expect(await ok(['ls', `${root}/docs`])).toBe('2024/\nbig.bin\ngreeting.txt\npiped.bin\n');
    const other = (await ok(['mkdir'])).trim();
    await ok(['mv', `${root}/docs/piped.bin`, `${other}/moved.bin`]);
    expect(await ok(['ls', other])).toBe('moved.bin\n');
    expect(await ok(['ls', `${root}/docs`])).toBe('2024/\nbig.bin\ngreeting.txt\n');
    const missing = await runCli(['-d', node, 'mv', `${root}/nope`, `${root}/docs`]);
    expect(missing.code).not.toBe(0);
    oneErrorLine(missing);
  });

  it('readonly derives a read cap that lists and reads but cannot write', async () => {
    const ro = (await ok(['readonly', root])).trim();
    expect(ro).toMatch(/^CS1:DIR-RO:/);
    expect(await ok(['readonly', ro])).toBe(`${ro}\n`);
    expect(await ok(['ls', ro])).toBe('docs/\n');
    expect(await ok(['get', `${ro}/docs/greeting.txt`])).toBe('hello again\n');
    const denied = await runCli(['-d', node, 'put', '-', `${ro}/new.txt`], { input: 'x' });
    expect(denied.code).not.toBe(0);
    expect(oneErrorLine(denied)).toMatch(/read-only/);
    // readonly of a CAP/PATH: the read cap of what it names
    expect((await ok(['readonly', `${root}/docs`])).trim()).toMatch(/^CS1:DIR-RO:/);
  });

  it('rm removes files; directories need -r unless empty', async () => {
    await ok(['rm', `${root}/docs/greeting.txt`]);
    const dir = await runCli(['-d', node, 'rm', `${root}/docs`]);
    expect(dir.code).not.toBe(0);
    expect(oneErrorLine(dir)).toMatch(/non-empty directory \(use -r\)/);
    await ok(['rm', `${root}/docs/2024/q1`]); // empty: no -r needed
    await ok(['rm', '-r', `${root}/docs`]);
    expect(await ok(['ls', root])).toBe('');
    const gone = await runCli(['-d', node, 'rm', `${root}/docs`]);
    expect(gone.code).not.toBe(0);
    expect(oneErrorLine(gone)).toMatch(/docs: no such file or directory/);
  });
});
