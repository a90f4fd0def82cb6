import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuseUnavailable, missing, mountSshfs, run, sftpBatch, skipNotice } from '../helpers/openssh.js';
import { connectSsh2, sftpOf, startGateway, type Gateway } from './gateway-fixture.js';
import { expectLinks, makeLinkTree } from '../helpers/link-trees.js';

/**
 * Real trees hold symbolic links. Copied into an sshfs mount with rsync -a,
 * cp -a and tar x they must arrive as links (exit 0, as against a chrooted
 * OpenSSH), and a second rsync -a --delete must change nothing. A link that
 * escapes with `..` or an absolute path, opened with sshfs's follow_symlinks
 * (the server resolves it), reaches only what the account's root holds.
 */
const skip = skipNotice(fuseUnavailable() ?? missing('rsync', 'tar', 'cp'), 'symlinks over sshfs');

let gw: Gateway;
let work: string;

/** READLINK over plain SFTP, byte for byte. */
async function linkTargetsOverSftp(dir: string, links: Record<string, string>): Promise<void> {
  const client = await connectSsh2(gw.port, 'alice', { privateKey: await readFile(gw.keyFile) });
  try {
    const sftp = await sftpOf(client);
    for (const [name, target] of Object.entries(links)) {
      const got = await new Promise<string>((resolve, reject) =>
        sftp.readlink(`${dir}/${name}`, (err, t) => (err ? reject(err) : resolve(t))),
      );
      expect(got).toBe(target);
    }
  } finally {
    client.end();
  }
}

beforeAll(async () => {
  gw = await startGateway({ chunkSize: 64 * 1024 });
  work = await mkdtemp(join(tmpdir(), 'capstan-links-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)('symbolic links over sshfs', () => {
  it('rsync -a, cp -a and tar x copy links as links; a second rsync -a --delete changes nothing', async () => {
    const content = randomBytes(200_000);
    const src = join(work, 'src');
    const links = await makeLinkTree(src, content);
    await run('tar', ['cf', join(work, 'src.tar'), '-C', src, '.']);
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const mount = await mountSshfs(gw.alice, mnt);
    try {
      const first = await run('rsync', ['-a', `${src}/`, join(mnt, 'r') + '/'], { timeoutMs: 120_000 });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      await expectLinks(join(mnt, 'r'), links);
      expect(await readFile(join(mnt, 'r', 'd', 'f'))).toEqual(content);
      // Links this machine's FUSE will not read back (see expectLinks) make the receiving rsync fail
      // readlink_stat with EPERM, against OpenSSH's sftp-server as well; they are left out of the
      // second run (and checked over SFTP below). Everything else must be unchanged, nothing deleted.
      const unreadable: string[] = [];
      for (const name of Object.keys(links)) {
        if (
          await readlink(join(mnt, 'r', name)).then(
            () => false,
            (err: NodeJS.ErrnoException) => err.code === 'EPERM',
          )
        )
          unreadable.push(name);
      }
      const excludes = unreadable.map((name) => `--exclude=/${name}`);
      const second = await run('rsync', ['-a', '--delete', '-i', ...excludes, `${src}/`, join(mnt, 'r') + '/'], { timeoutMs: 120_000 });
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      expect(second.stdout).toBe('');

      const cp = await run('cp', ['-a', src, join(mnt, 'cpa')], { timeoutMs: 120_000 });
      expect(cp.stderr).toBe('');
      expect(cp.code).toBe(0);
      await expectLinks(join(mnt, 'cpa'), links);

      await mkdir(join(mnt, 'tarx'));
      const tar = await run('tar', ['xf', join(work, 'src.tar'), '-C', join(mnt, 'tarx')], { timeoutMs: 120_000 });
      expect(tar.stderr).toBe('');
      expect(tar.code).toBe(0);
      await expectLinks(join(mnt, 'tarx'), links);
      expect(await readFile(join(mnt, 'tarx', 'd', 'f'))).toEqual(content);
    } finally {
      await mount.unmount();
    }
    for (const dir of ['/r', '/cpa', '/tarx']) await linkTargetsOverSftp(dir, links);
  }, 300_000);

  it('with follow_symlinks the server resolves: an escaping link reaches only the root, a loop fails and the mount goes on', async () => {
    const mnt = join(work, 'mnt-follow');
    await mkdir(mnt);
    const mount = await mountSshfs(gw.alice, mnt, ['follow_symlinks']);
    try {
      await mkdir(join(mnt, 'etc'), { recursive: true });
      await writeFile(join(mnt, 'etc', 'passwd'), 'the account root own etc/passwd\n');
      await mkdir(join(mnt, 'deep', 'er'), { recursive: true });
      // Made over SFTP: with follow_symlinks sshfs stats a new link through to its target, and the
      // kernel then refuses a symlink(2) whose result is not a link (EIO), as against OpenSSH.
      const made = await sftpBatch(gw.alice, work, [
        'ln -s ../../../../../../../etc/passwd deep/er/evil',
        'ln -s /etc/passwd deep/abs',
        'ln -s loopb loopa',
        'ln -s loopa loopb',
      ]);
      expect(made.code).toBe(0);
      expect(await readFile(join(mnt, 'deep', 'er', 'evil'), 'utf8')).toBe('the account root own etc/passwd\n');
      expect(await readFile(join(mnt, 'deep', 'abs'), 'utf8')).toBe('the account root own etc/passwd\n');
      await expect(readFile(join(mnt, 'loopa'))).rejects.toMatchObject({ code: expect.any(String) });
      await writeFile(join(mnt, 'after'), 'still serving');
      expect(await readFile(join(mnt, 'after'), 'utf8')).toBe('still serving');
    } finally {
      await mount.unmount();
    }
  }, 120_000);
});
