import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing, sftpBatch, skipNotice, sftpOk } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * Symbolic links through OpenSSH's sftp (its `ln -s` sends SYMLINK with the
 * target first): created, listed with `ls -l`, read through, resolved inside
 * the account's root only, and a loop is an error after which the session
 * goes on.
 */
const noSftp = skipNotice(missing('sftp', 'ssh-keygen'), 'OpenSSH sftp symlink tests');

let gw: Gateway;
let work: string;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const ok = (commands: string[], target = gw.alice): Promise<string> => sftpOk(target, work, commands);

beforeAll(async () => {
  gw = await startGateway();
  work = await mkdtemp(join(tmpdir(), 'capstan-symlink-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(noSftp)('symbolic links with OpenSSH sftp', () => {
  it('ln -s, ls -l shows l and the target, get through the link is byte-identical, rm removes only the link', async () => {
    const content = randomBytes(100_000);
    await writeFile(join(work, 'f.bin'), content);
    const out = await ok([
      'mkdir d',
      'put f.bin d/f.bin',
      'ln -s d/f.bin rel',
      'ln -s /d/f.bin abs',
      'ls -l',
      'get rel via-rel',
      'get abs via-abs',
    ]);
    expect(out).toMatch(/^lrwxrwxrwx {4}1 alice {4}alice +7 .* rel -> d\/f\.bin$/m);
    expect(out).toMatch(/^lrwxrwxrwx .* abs -> \/d\/f\.bin$/m);
    expect(sha(await readFile(join(work, 'via-rel')))).toBe(sha(content));
    expect(sha(await readFile(join(work, 'via-abs')))).toBe(sha(content));
    // A directory link: cd and ls through it; rm takes the link, not the target.
    await ok(['ln -s d dlink', 'cd dlink', 'ls f.bin', 'cd /', 'rm rel', 'rm dlink', 'get d/f.bin again']);
    expect(sha(await readFile(join(work, 'again')))).toBe(sha(content));
    const gone = await sftpBatch(gw.alice, work, ['ls -l rel']);
    expect(gone.code).not.toBe(0);
    // Renaming the link moves the link itself.
    const renamed = await ok(['rename abs abs2', 'ls -l']);
    expect(renamed).toMatch(/^l.* abs2 -> \/d\/f\.bin$/m);
    // A hard link of a link is a second link, as link(2) does (it does not follow).
    const hard = await ok(['ln abs2 hard', 'ls -l']);
    expect(hard).toMatch(/^l.* hard -> \/d\/f\.bin$/m);
  });

  it('a link escaping with .. or an absolute path stays inside the root; /uri/CAP in a target is not followed', async () => {
    await writeFile(join(work, 'top.txt'), 'top of the root');
    await ok(['put top.txt', 'mkdir a', 'mkdir a/b']);
    await ok(['ln -s ../../../../../../top.txt a/b/escape', 'ln -s /../../top.txt a/b/abs-escape', 'ln -s ../../../etc/passwd a/passwd']);
    await ok(['get a/b/escape e1', 'get a/b/abs-escape e2']);
    expect(await readFile(join(work, 'e1'), 'utf8')).toBe('top of the root');
    expect(await readFile(join(work, 'e2'), 'utf8')).toBe('top of the root');
    const passwd = await sftpBatch(gw.alice, work, ['get a/passwd p']);
    expect(passwd.code).not.toBe(0);
    expect(passwd.stderr).toMatch(/No such file/);
    // The reader account holds only the read cap; a link naming alice's write cap by /uri/ gives it nothing.
    await ok([`ln -s /uri/${gw.root.toString()}/top.txt bycap`]);
    const viaCap = await sftpBatch(gw.alice, work, ['get bycap c']);
    expect(viaCap.code).not.toBe(0);
    expect(viaCap.stderr).toMatch(/No such file/);
    const logs = JSON.stringify(gw.logs);
    expect(logs).not.toContain(gw.root.toString());
  });

  it('a loop is an error and the session goes on', async () => {
    await writeFile(join(work, 'after.txt'), 'still serving');
    await ok(['ln -s loop2 loop1', 'ln -s loop1 loop2', 'ln -s self self']);
    const r = await sftpBatch(gw.alice, work, ['-get loop1 l', '-get self s', '-cd loop1', 'put after.txt', 'get after.txt after.back']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Failure/);
    expect(await readFile(join(work, 'after.back'), 'utf8')).toBe('still serving');
  });

  it('ln -s onto an existing name fails; through the read-only account it is permission denied', async () => {
    await writeFile(join(work, 'x'), 'x');
    await ok(['put x exists']);
    const r = await sftpBatch(gw.alice, work, ['ln -s anything exists']);
    expect(r.code).not.toBe(0);
    const ro = await sftpBatch(gw.reader, work, ['ln -s x newlink']);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/Permission denied/);
    // The reader still sees and follows alice's links.
    const seen = await ok(['ls -l top.txt', 'get a/b/escape r1'], gw.reader);
    expect(seen).toMatch(/top\.txt/);
    expect(await readFile(join(work, 'r1'), 'utf8')).toBe('top of the root');
  });
});
