import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, runCliBinary, stopAllCli, cliAt } from '../helpers/cli.js';

/**
 * `capstan ln` on a node with no gateway running (the embedded default,
 * opened by the command itself). test/cli/exchange.test.ts runs it against
 * running gateways (embedded and PostgreSQL) and through OpenSSH sftp.
 */

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let alice: string;
let bob: string;

const { ok, fails } = cliAt(() => node);

beforeAll(async () => {
  tmp = await makeTempDir();
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  alice = (await ok(['mkdir'])).trim();
  bob = (await ok(['mkdir'])).trim();
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('capstan ln', () => {
  it('links a file from CAP/PATH under a new name; both names give the same bytes', async () => {
    const content = randomBytes(200_000);
    await ok(['put', '-', `${alice}/report.bin`], content);
    await ok(['ln', `${alice}/report.bin`, `${bob}/copy.bin`]);
    for (const name of [`${alice}/report.bin`, `${bob}/copy.bin`]) {
      const got = await runCliBinary(['-d', node, 'get', name, '-']);
      expect(got.code).toBe(0);
      expect(got.stdoutBytes.equals(content)).toBe(true);
    }
    expect(await ok(['ls', '-l', bob])).toMatch(/^file\s+rw\s+200000 .* copy\.bin$/m);
    // A bare directory cap as TARGET: the source's name, in that directory.
    const docs = (await ok(['mkdir', `${bob}/docs`])).trim();
    await ok(['ln', `${alice}/report.bin`, docs]);
    expect(await ok(['ls', `${bob}/docs`])).toBe('report.bin\n');
    // A path naming an existing directory is the name to link, not a directory to link into.
    expect(await fails(['ln', `${alice}/report.bin`, `${bob}/docs`])).toMatch(/^capstan: docs exists/);
  });

  it('a directory write link: a change through one name is seen through the other', async () => {
    const shared = (await ok(['mkdir', `${alice}/shared`])).trim();
    expect(JSON.parse(await ok(['ln', '--json', shared, `${bob}/from-alice`]))).toEqual({
      name: 'from-alice',
      type: 'directory',
      access: 'write',
      replaced: false,
    });
    await ok(['put', '-', `${bob}/from-alice/note.txt`], 'written by bob');
    expect(await ok(['get', `${alice}/shared/note.txt`, '-'])).toBe('written by bob');
  });

  it('--readonly links the read cap, and a read cap source never makes a write link', async () => {
    await ok(['mkdir', `${alice}/pub`]);
    await ok(['put', '-', `${alice}/pub/a.txt`], 'public');
    expect(JSON.parse(await ok(['ln', '--readonly', '--json', `${alice}/pub`, `${bob}/pub-ro`]))).toMatchObject({ access: 'read' });
    expect(await ok(['get', `${bob}/pub-ro/a.txt`, '-'])).toBe('public');
    expect(await fails(['put', '-', `${bob}/pub-ro/b.txt`])).toMatch(/read-only/);

    // From a read cap, without --readonly: still read-only.
    const readCap = (await ok(['readonly', `${alice}/pub`])).trim();
    expect(JSON.parse(await ok(['ln', '--json', readCap, `${bob}/pub-ro2`]))).toMatchObject({ access: 'read' });
    expect(await fails(['mkdir', `${bob}/pub-ro2/x`])).toMatch(/read-only/);

    // Through a read-only path: what it reaches is read-only too, however deep.
    await ok(['mkdir', '-p', `${alice}/pub/deeper`]);
    const readRoot = (await ok(['readonly', alice])).trim();
    expect(JSON.parse(await ok(['ln', '--json', `${readRoot}/pub/deeper`, `${bob}/deeper`]))).toMatchObject({ access: 'read' });
    expect(await fails(['put', '-', `${bob}/deeper/x`])).toMatch(/read-only/);
    // And nothing can be linked into a read-only directory.
    expect(await fails(['ln', `${alice}/pub/a.txt`, `${readRoot}/pub/a2.txt`])).toMatch(/read-only/);
  });

  it('refuses to replace an entry unless --force', async () => {
    await ok(['put', '-', `${alice}/one.txt`], 'one');
    await ok(['put', '-', `${bob}/target.txt`], 'old');
    expect(await fails(['ln', `${alice}/one.txt`, `${bob}/target.txt`])).toMatch(/^capstan: target\.txt exists \(use --force/);
    expect(await ok(['get', `${bob}/target.txt`, '-'])).toBe('old');
    expect(JSON.parse(await ok(['ln', '-f', '--json', `${alice}/one.txt`, `${bob}/target.txt`]))).toMatchObject({ replaced: true });
    expect(await ok(['get', `${bob}/target.txt`, '-'])).toBe('one');
  });

  it('refuses bad input with one line that holds no cap', async () => {
    expect(await fails(['ln', 'CS1:DIR:notacap', `${bob}/x`])).toMatch(/malformed/);
    expect(await fails(['ln', `${alice}/missing.txt`, `${bob}/x`])).toMatch(/missing\.txt: no such file or directory/);
    expect(await fails(['ln', `${alice}/one.txt`, `${bob}/nope/x`])).toMatch(/nope: no such directory/);
    expect(await fails(['ln', `${alice}/one.txt`, `${bob}/target.txt/x`])).toMatch(/not a directory/);
    expect(await fails(['ln', `${alice}/one.txt`, `${bob}/../x`])).toMatch(/"\." and "\.\." are not allowed/);
    expect(await fails(['ln', alice, bob])).toMatch(/TARGET as DIRCAP\/NAME/);
    // A directory inside itself, seen from the target's own path.
    expect(await fails(['ln', alice, `${alice}/shared/loop`])).toMatch(/inside itself/);
    // A file cap is not a directory to link into.
    const fileCap = (await ok(['put', '-', `${alice}/f2.txt`], 'x')).trim();
    expect(await fails(['ln', `${alice}/one.txt`, `${fileCap}/x`])).toMatch(/directory/);
    expect(await ok(['ls', bob])).not.toMatch(/^x$/m);
  });

  it('capstan rm of one name of a linked directory leaves the other name working', async () => {
    // rm of an empty directory through the CLI only unlinks; the sealing rmdir is SFTP's (exchange.test.ts).
    const d = (await ok(['mkdir', `${alice}/temp`])).trim();
    await ok(['ln', d, `${bob}/temp`]);
    await ok(['rm', `${alice}/temp`]);
    await ok(['put', '-', `${bob}/temp/still.txt`], 'alive');
    expect(await ok(['get', `${d}/still.txt`, '-'])).toBe('alive');
  });
});
