import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peersOrSkip, requirePeers, sftpBatch, type Target } from '../helpers/openssh.js';
import { Ssh2Sessions, startGateway, type Gateway } from './gateway-fixture.js';

/**
 * An append-only account (`backup`: alice's root, the append-only option)
 * under OpenSSH's sftp: every refused operation is PERMISSION_DENIED and
 * leaves the file as it was; what a session created it may change, rename
 * and remove; a later session sees it as existing before. Contents are
 * checked by reading them back as alice (full access to the same root).
 */
const PEERS = ['sftp', 'ssh-keygen'];
const skip = peersOrSkip('append-only accounts with OpenSSH sftp', ...PEERS);

let gw: Gateway;
let work: string;
const sessions = new Ssh2Sessions();

const OLD = Buffer.from('the file that was there first\n');
const OLD_IN_DIR = Buffer.from('inside a directory that was there first\n');

async function batch(target: Target, commands: string[]) {
  return sftpBatch(target, work, commands);
}

async function ok(target: Target, commands: string[]): Promise<string> {
  const r = await batch(target, commands);
  if (r.code !== 0)
    throw new Error(
      `sftp failed (${r.code}):\n${r.stdout}\n${r.stderr}\n${JSON.stringify(gw.logs.filter((l) => (l['level'] as number) >= 40).slice(-5))}`,
    );
  return r.stdout;
}

/** One command as `backup` that must be refused with "Permission denied". */
async function refused(command: string): Promise<void> {
  const r = await batch(gw.backup, [command]);
  expect(r.code, r.stdout).not.toBe(0);
  expect(r.stderr).toMatch(/Permission denied/);
}

/** A remote file's bytes, read as alice; undefined if it is not there. */
async function content(path: string): Promise<Buffer | undefined> {
  const local = join(work, `back-${randomBytes(6).toString('hex')}`);
  const r = await batch(gw.alice, [`get ${path} ${local}`]);
  if (r.code !== 0) return undefined;
  return readFile(local);
}

async function local(name: string, data: Buffer): Promise<string> {
  await writeFile(join(work, name), data);
  return name;
}

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers(...PEERS);
  gw = await startGateway({ chunkSize: 4096 });
  work = await mkdtemp(join(tmpdir(), 'capstan-append-only-'));
  // What exists before any backup session, made by alice.
  await local('old', OLD);
  await local('old-in-dir', OLD_IN_DIR);
  await ok(gw.alice, ['put old old.txt', 'mkdir empty', 'mkdir full', 'put old-in-dir full/f']);
});
afterAll(async () => {
  sessions.endAll();
  await gw?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)('append-only account, OpenSSH sftp', () => {
  it('refuses rm, rename, overwrite, append, posix-rename over and rmdir of what existed; the files stay as they were', async () => {
    const other = await local('other', Buffer.from('would replace the first file, and is longer than it\n'));
    await refused('rm old.txt');
    await refused('rename old.txt moved.txt');
    await refused(`put ${other} old.txt`);
    // put -a resumes: OPEN without TRUNC and writes at the end, which would extend the old file.
    await refused(`put -a ${other} old.txt`);
    await refused('rmdir empty');
    await refused('rm full/f');
    await refused('rename full gone');
    // OpenSSH's rename uses posix-rename@openssh.com, which would replace the target.
    await refused('rename empty full');
    expect(await content('old.txt')).toEqual(OLD);
    expect(await content('moved.txt')).toBeUndefined();
    expect(await content('full/f')).toEqual(OLD_IN_DIR);
    expect(await ok(gw.alice, ['ls -1'])).toMatch(/^empty$/m);
  });

  it('refuses a rename of its own new file onto an existing one, and the session goes on after a refusal', async () => {
    const fresh = await local('fresh', Buffer.from('new in this session\n'));
    // '-' lets the batch go on after a failure: later commands run in the same session.
    const r = await batch(gw.backup, [`put ${fresh} own.tmp`, '-rename own.tmp old.txt', '-rm old.txt', 'rename own.tmp own.txt']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/Permission denied/g)).toHaveLength(2);
    expect(await content('old.txt')).toEqual(OLD);
    expect(await content('own.tmp')).toBeUndefined();
    expect(await content('own.txt')).toEqual(Buffer.from('new in this session\n'));
  });

  it('allows, within one session: put new, overwrite its own, rename its temp file, rm its own file, mkdir and rmdir its own directory', async () => {
    const a = await local('a', randomBytes(10_000));
    const b = await local('b', randomBytes(5_000));
    const c = await local('c', randomBytes(3_000));
    const d = await local('d', randomBytes(100));
    await ok(gw.backup, [
      `put ${a} new1`,
      `put ${b} new1`, // its own file: may be overwritten in the session that made it
      `put ${c} data.tmp-123`,
      'rename data.tmp-123 data',
      `put ${d} lock`,
      'rm lock',
      'mkdir snap',
      'mkdir snap/inner',
      `put ${a} snap/inner/x`,
      'rm snap/inner/x',
      'rmdir snap/inner',
      'rmdir snap',
      'mkdir keep',
      `put ${d} keep/y`,
      'rename keep kept',
    ]);
    expect(await content('new1')).toEqual(await readFile(join(work, b)));
    expect(await content('data')).toEqual(await readFile(join(work, c)));
    expect(await content('data.tmp-123')).toBeUndefined();
    expect(await content('lock')).toBeUndefined();
    expect(await content('snap/inner/x')).toBeUndefined();
    expect(await ok(gw.alice, ['ls -1'])).not.toMatch(/^snap$/m);
    expect(await content('kept/y')).toEqual(await readFile(join(work, d)));

    // A later session of the same account sees all of that as existing before it.
    await refused('rm new1');
    await refused('rm kept/y');
    await refused('rmdir kept');
    await refused(`put ${a} data`);
    expect(await content('new1')).toEqual(await readFile(join(work, b)));
    expect(await content('kept/y')).toEqual(await readFile(join(work, d)));
    // Adding to a directory made by an earlier session is still allowed.
    await ok(gw.backup, [`put ${c} kept/z`]);
    expect(await content('kept/z')).toEqual(await readFile(join(work, c)));
  });

  it('links: its own symbolic and hard links may be made and removed, but writing through a link to an old file is refused', async () => {
    const other = await local('through-link', Buffer.from('written through a link\n'));
    await ok(gw.backup, ['ln -s old.txt mylink', 'rm mylink', 'ln old.txt hard', 'rm hard', 'ln -s full/f keep-link']);
    // A new link to an old file: the write follows it to the old file, which existed before.
    await refused(`put ${other} keep-link`);
    const r = await batch(gw.backup, ['ln -s old.txt link2', `-put ${other} link2`, 'rm link2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
    expect(await content('old.txt')).toEqual(OLD);
    expect(await content('full/f')).toEqual(OLD_IN_DIR);
    expect(await content('hard')).toBeUndefined();
    expect(await content('mylink')).toBeUndefined();
    // The link made by an earlier session is protected like a file.
    await refused('rm keep-link');
    expect(await ok(gw.alice, ['ls -1'])).toMatch(/^keep-link$/m);
    expect(gw.logs.some((l) => l['event'] === 'login' && l['user'] === 'backup' && l['appendOnly'] === true)).toBe(true);
    expect(gw.logs.some((l) => l['event'] === 'append_only_refused' && l['op'] === 'open')).toBe(true);
  });

  it('allows times and mode on what existed, refuses a size (truncate), as SETSTAT over ssh2', async () => {
    const { sftp } = await sessions.open(gw.port, 'backup', { privateKey: await readFile(gw.keyFile) });
    const setstat = (path: string, attrs: Record<string, number>) =>
      new Promise<unknown>((resolve) => sftp.setstat(path, attrs, (err) => resolve(err)));
    const truncated = (await setstat('old.txt', { size: 3 })) as { code?: number; message?: string } | undefined;
    expect(truncated?.code).toBe(3); // SSH_FX_PERMISSION_DENIED
    expect(truncated?.message).toMatch(/append-only/);
    const extended = (await setstat('old.txt', { size: 1_000_000 })) as { code?: number } | undefined;
    expect(extended?.code).toBe(3);
    expect(await setstat('old.txt', { atime: 1_700_000_000, mtime: 1_700_000_000 })).toBeUndefined();
    expect(await setstat('old.txt', { mode: 0o644 })).toBeUndefined();
    expect(await content('old.txt')).toEqual(OLD);
    expect(await ok(gw.alice, ['ls -l old.txt'])).toMatch(/Nov 1[45] {2}2023 old\.txt/);
  });
});
