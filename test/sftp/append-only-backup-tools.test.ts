import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must, rcloneOverSftp, resticOverSftp } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, sftpBatch, type RunResult } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * Real backup tools against an append-only account (`backup`, alice's root
 * with the append-only option): restic backs up and checks, but cannot
 * forget or prune; rclone copies, but its sync cannot delete. What was
 * stored is read back byte for byte (restic restore; sftp get as alice).
 */
const PEERS = ['restic', 'rclone', 'ssh', 'sftp', 'ssh-keygen'];
const skip = peersOrSkip('append-only accounts with restic and rclone', ...PEERS);

let gw: Gateway;
let work: string;

/** restic on the account `user` (the append-only `backup` unless told), repository /repo. */
function restic(args: string[], user = 'backup'): Promise<RunResult> {
  return resticOverSftp({ port: gw.port, user, keyFile: gw.keyFile }, work, '/repo', args);
}

/** rclone with an on-the-fly sftp remote for `backup`. */
function rclone(args: string[]): Promise<RunResult> {
  return rcloneOverSftp({ port: gw.port, user: 'backup', keyFile: gw.keyFile }, work, args);
}

/** A remote file's bytes, read as alice (full access to the same root); undefined if absent. */
async function remoteContent(path: string): Promise<Buffer | undefined> {
  const local = join(work, `back-${randomBytes(6).toString('hex')}`);
  const r = await sftpBatch(gw.alice, work, [`get ${path} ${local}`]);
  return r.code === 0 ? readFile(local) : undefined;
}

/** Writes `files` under `dir` (relative names), returning them. */
async function tree(dir: string, files: Record<string, Buffer>): Promise<Record<string, Buffer>> {
  for (const [name, data] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), data);
  }
  return files;
}

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers(...PEERS);
  gw = await startGateway({ fsChunks: true });
  work = await mkdtemp(join(tmpdir(), 'capstan-append-only-tools-'));
  await writeFile(join(work, 'rclone.conf'), '');
});
afterAll(async () => {
  await gw?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)('append-only account with real backup tools', () => {
  it('restic: init and two backups succeed and check; forget --prune fails, and both snapshots still check and restore byte-identical', async () => {
    const source = join(work, 'source');
    const first = await tree(source, {
      'a.bin': randomBytes(300_000),
      'docs/b.txt': Buffer.from('first version\n'),
      'docs/c.bin': randomBytes(40_000),
    });
    must(await restic(['init']), 'restic init');
    must(await restic(['backup', '--host', 'test', source]), 'restic backup 1');
    const second = await tree(source, {
      'docs/b.txt': Buffer.from('second version, longer than the first\n'),
      'd.bin': randomBytes(70_000),
    });
    must(await restic(['backup', '--host', 'test', source]), 'restic backup 2');
    must(await restic(['check']), 'restic check');

    const snapshots = JSON.parse(must(await restic(['snapshots', '--json']), 'restic snapshots').stdout) as { id: string; time: string }[];
    expect(snapshots).toHaveLength(2);

    const forget = await restic(['forget', '--keep-last', '1', '--prune']);
    expect(forget.code, forget.stdout).not.toBe(0);
    expect(forget.stderr).toMatch(/permission denied/i);
    must(await restic(['check', '--read-data']), 'restic check after the refused forget');
    const after = JSON.parse(must(await restic(['snapshots', '--json']), 'restic snapshots').stdout) as { id: string }[];
    expect(after.map((s) => s.id).sort()).toEqual(snapshots.map((s) => s.id).sort());

    const sorted = [...snapshots].sort((x, y) => x.time.localeCompare(y.time));
    const expected = [first, { ...first, ...second }];
    for (const [i, snapshot] of sorted.entries()) {
      const target = join(work, `restore-${i}`);
      must(await restic(['restore', snapshot.id, '--target', target]), `restic restore ${i}`);
      const files = expected[i]!;
      for (const [name, data] of Object.entries(files)) {
        expect(await readFile(join(target, source, name)), `snapshot ${i}: ${name}`).toEqual(data);
      }
    }
    // The second snapshot has d.bin, the first does not.
    await expect(readFile(join(work, 'restore-0', source, 'd.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
  }, 600_000);

  it('rclone: copy succeeds; sync of a source missing a file cannot delete it (and still copies what is new)', async () => {
    const source = join(work, 'rc-source');
    const files = await tree(source, {
      'one.bin': randomBytes(50_000),
      'two.txt': Buffer.from('two\n'),
      'sub/three.bin': randomBytes(20_000),
    });
    must(await rclone(['copy', source, ':sftp:/rc']), 'rclone copy');
    for (const [name, data] of Object.entries(files)) expect(await remoteContent(`rc/${name}`), name).toEqual(data);

    await rm(join(source, 'two.txt'));
    const added = await tree(source, { 'four.txt': Buffer.from('new after the first copy\n') });
    const sync = await rclone(['sync', source, ':sftp:/rc']);
    expect(sync.code, sync.stderr).not.toBe(0);
    expect(sync.stderr).toMatch(/permission denied/i);
    expect(await remoteContent('rc/two.txt')).toEqual(files['two.txt']);
    expect(await remoteContent('rc/four.txt')).toEqual(added['four.txt']);
    expect(await remoteContent('rc/one.bin')).toEqual(files['one.bin']);
  }, 300_000);
});
