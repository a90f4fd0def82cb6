import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuseUnavailable, missing, mountSshfs, remote, run, scp, sftpBatch, skipNotice, sftpOk } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * /.snapshots/ over SFTP (docs/operations.md, Snapshots): each snapshot of
 * the account's root by UTC time, the whole tree as it was, read with
 * OpenSSH sftp and scp, sshfs and rsync; every write under it is permission
 * denied and the session goes on; it is hidden from the root's listing, so
 * rm -r and rsync --delete never touch it. An account with the
 * `no-snapshots` option has none (a real `.snapshots` is then its own).
 */
const noClients = skipNotice(missing('sftp', 'scp', 'ssh-keygen'), 'snapshots over OpenSSH');
const noFuse = skipNotice(missing('sshfs', 'rsync') ?? fuseUnavailable(), 'snapshots over sshfs and rsync');

let gw: Gateway;
let work: string;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const original = { top: randomBytes(50_000), deep: randomBytes(300_000) };
let name: string;

const ok = (commands: string[], target = gw.alice): Promise<string> => sftpOk(target, work, commands);

/** One refused command: sftp exits non-zero, says permission denied, and the next batch works. */
async function refused(command: string): Promise<void> {
  const r = await sftpBatch(gw.alice, work, [command]);
  expect(r.code, command).not.toBe(0);
  expect(r.stderr, command).toMatch(/Permission denied/i);
}

beforeAll(async () => {
  gw = await startGateway();
  work = await mkdtemp(join(tmpdir(), 'capstan-snapshots-'));
  await writeFile(join(work, 'top.bin'), original.top);
  await writeFile(join(work, 'deep.bin'), original.deep);
  await ok(['mkdir docs', 'mkdir docs/sub', 'put top.bin top.bin', 'put deep.bin docs/sub/deep.bin']);
  const snapshot = await gw.tree.createSnapshot(gw.root);
  name = `${new Date(snapshot.createdMs).toISOString().slice(0, 19)}Z`;
  // Everything changes after it.
  await writeFile(join(work, 'new.bin'), randomBytes(1_000));
  await ok(['put new.bin top.bin', 'rm docs/sub/deep.bin', 'rmdir docs/sub', 'rename docs papers', 'put new.bin added.bin']);
}, 60_000);
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(noClients)('/.snapshots/ with OpenSSH sftp and scp', () => {
  it('lists the snapshot by UTC time and reads the tree as it was, byte-identical', async () => {
    const listing = await ok(['ls -1 /.snapshots', `ls -1 /.snapshots/${name}`, `ls -1 /.snapshots/${name}/docs/sub`]);
    expect(listing).toContain(name);
    expect(listing).toMatch(/docs\n[\s\S]*top\.bin/);
    expect(listing).toContain('deep.bin');
    await ok([`get /.snapshots/${name}/top.bin got-top`, `get /.snapshots/${name}/docs/sub/deep.bin got-deep`]);
    expect(sha(await readFile(join(work, 'got-top')))).toBe(sha(original.top));
    expect(sha(await readFile(join(work, 'got-deep')))).toBe(sha(original.deep));
    // realpath keeps the snapshot's path (never a cap).
    const pwd = await ok([`cd /.snapshots/${name}/docs/sub`, 'pwd']);
    expect(pwd).toContain(`/.snapshots/${name}/docs/sub`);
    expect(pwd).not.toMatch(/CS1:/);
  });

  it('is hidden from the root listing and absent for a read-only account', async () => {
    const root = await ok(['ls -1a /']);
    expect(root).not.toContain('.snapshots');
    const reader = await sftpBatch(gw.reader, work, ['ls /.snapshots']);
    expect(reader.code).not.toBe(0);
  });

  it('every write under it is permission denied, and the snapshot is unchanged', async () => {
    await writeFile(join(work, 'x.bin'), 'x');
    for (const command of [
      `put x.bin /.snapshots/${name}/top.bin`,
      `put x.bin /.snapshots/${name}/new.bin`,
      `rm /.snapshots/${name}/top.bin`,
      `rename /.snapshots/${name}/top.bin /moved.bin`,
      `mkdir /.snapshots/${name}/d`,
      `rmdir /.snapshots/${name}/docs`,
      `chmod 600 /.snapshots/${name}/top.bin`,
      'mkdir /.snapshots/mine',
      `rmdir /.snapshots/${name}`,
      `rename /.snapshots/${name} /.snapshots/other`,
      'rmdir /.snapshots',
    ]) {
      await refused(command);
    }
    await ok([`get /.snapshots/${name}/top.bin again`]);
    expect(sha(await readFile(join(work, 'again')))).toBe(sha(original.top));
  });

  it('scp -r copies a snapshot out', async () => {
    const out = join(work, 'scp-out');
    const r = await scp(gw.alice, ['-r', remote(gw.alice, `/.snapshots/${name}`), out]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(await readFile(join(out, 'top.bin')))).toBe(sha(original.top));
    expect(sha(await readFile(join(out, 'docs/sub/deep.bin')))).toBe(sha(original.deep));
  });

  it('an account with the no-snapshots option has no /.snapshots/; a real entry of that name is an ordinary one for it', async () => {
    // Same root and key as alice: only the option differs.
    const absent = await sftpBatch(gw.nosnap, work, ['ls /.snapshots']);
    expect(absent.code).not.toBe(0);
    expect(absent.stderr).toMatch(/not found/i);
    const absentGet = await sftpBatch(gw.nosnap, work, [`get /.snapshots/${name}/top.bin nosnap-top`]);
    expect(absentGet.code).not.toBe(0);
    expect(absentGet.stderr).toMatch(/not found/i);

    const mine = randomBytes(20_000);
    await writeFile(join(work, 'mine.bin'), mine);
    await ok(['mkdir /.snapshots', 'put mine.bin /.snapshots/mine.bin', 'get /.snapshots/mine.bin mine-back'], gw.nosnap);
    expect(sha(await readFile(join(work, 'mine-back')))).toBe(sha(mine));
    expect((await ok(['ls -1 /.snapshots'], gw.nosnap)).split('\n').map((l) => l.replace(/^.*\//, ''))).toContain('mine.bin');
    expect(await ok(['ls -1a /'], gw.nosnap)).toContain('.snapshots');
    expect(await ok(['ls -1 /.snapshots'], gw.nosnap)).not.toContain(name);

    // alice, on the same root, still gets the folder of snapshots there (it shadows the real entry).
    const alice = await ok(['ls -1 /.snapshots']);
    expect(alice).toContain(name);
    expect(alice).not.toContain('mine.bin');
    await ok([`get /.snapshots/${name}/top.bin alice-top`]);
    expect(sha(await readFile(join(work, 'alice-top')))).toBe(sha(original.top));

    await ok(['rm /.snapshots/mine.bin', 'rmdir /.snapshots'], gw.nosnap);
    expect(await ok(['ls -1a /'], gw.nosnap)).not.toContain('.snapshots');
  });

  it('a removed snapshot is gone from the folder', async () => {
    const extra = await gw.tree.createSnapshot(gw.root);
    expect(await ok(['ls -1 /.snapshots'])).toMatch(/\n?.*Z(_\d)?\n.*Z(_\d)?/);
    await gw.tree.removeSnapshot(extra.cap);
    const listing = (await ok(['ls -1 /.snapshots'])).split('\n').filter((l) => /^\d{4}-/.test(l.replace(/^.*\//, '')));
    expect(listing).toHaveLength(1);
  });
});

describe.skipIf(noFuse ?? noClients)('/.snapshots/ through sshfs and rsync', () => {
  it('rsync copies a snapshot out of an sshfs mount; rsync --delete and rm -r of the mount never reach it', async () => {
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const mount = await mountSshfs(gw.alice, mnt);
    try {
      expect(await readdir(join(mnt, '.snapshots'))).toContain(name);
      expect(await readdir(mnt)).not.toContain('.snapshots');
      const restored = join(work, 'restored');
      const r = await run('rsync', ['-a', `${join(mnt, '.snapshots', name)}/`, `${restored}/`]);
      expect(r.code, r.stderr).toBe(0);
      expect(sha(await readFile(join(restored, 'top.bin')))).toBe(sha(original.top));
      expect(sha(await readFile(join(restored, 'docs/sub/deep.bin')))).toBe(sha(original.deep));
      await expect(writeFile(join(mnt, '.snapshots', name, 'top.bin'), 'no')).rejects.toMatchObject({ code: 'EACCES' });

      // Mirror an empty folder onto the mount: the live tree empties, the snapshot stays.
      const empty = join(work, 'empty');
      await mkdir(empty);
      const mirrored = await run('rsync', ['-a', '--delete', `${empty}/`, `${mnt}/`]);
      expect(mirrored.code, mirrored.stderr).toBe(0);
      expect(await readdir(mnt)).toEqual([]);
      expect(sha(await readFile(join(mnt, '.snapshots', name, 'docs/sub/deep.bin')))).toBe(sha(original.deep));
    } finally {
      await mount.unmount();
    }
  }, 60_000);
});
