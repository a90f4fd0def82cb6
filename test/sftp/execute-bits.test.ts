import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { fuseUnavailable, mountSshfs, peersOrSkip, requirePeers, run, sftpBatch, skipNotice, type SshfsMount } from '../helpers/openssh.js';
import { startPeerGateway, type PeerGateway } from '../helpers/peer-gateway.js';
import type { Gateway } from './gateway-fixture.js';

/**
 * A file's execute bits (docs/spec/directories.md, Execute bits): set by
 * chmod and by the mode an upload is created with, kept by a new version of
 * the file, shown as 0755. Before them every file listed 0644, so a script
 * backed up with `rsync -a` into a mount, or put with OpenSSH's sftp, came
 * back without its x bits, and a git work tree in a mount showed every
 * executable as modified.
 */
const SUITE = 'execute bits over SFTP';
const skip = peersOrSkip(SUITE, 'sftp');
const sshfsSkip = skip ?? skipNotice(fuseUnavailable(), `${SUITE}, through sshfs`);

let peer: PeerGateway;
let gw: Gateway;
let work: string;

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers('sftp');
  peer = await startPeerGateway('capstan-xbits-');
  ({ gw, work } = peer);
});
afterAll(() => peer?.close());

/** name → mode string, from OpenSSH's `ls -l`. */
const modes = async (dir: string): Promise<Record<string, string>> => {
  const out: Record<string, string> = {};
  for (const line of (await peer.listing(dir)).split('\n')) {
    const m = /^([-dl][rwx-]{9})\s.*\s(\S+)$/.exec(line);
    if (m !== null) out[m[2]!] = m[1]!;
  }
  return out;
};

/**
 * Runs a bash script from the work folder. A script that works in the mount
 * starts with `cd`: a child given a cwd in it would deadlock, since spawn
 * waits for the child's exec and the child's chdir waits for the gateway in
 * this process.
 */
async function sh(script: string): Promise<string> {
  const r = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd: work, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`shell step failed (${r.code}): ${script}\n${r.stderr}`);
  return r.stdout;
}

describe.skipIf(skip)(SUITE, () => {
  it('OpenSSH sftp: put creates with the local mode, chmod sets and clears, a new version keeps the bits, a read-only script is 0555', async () => {
    await writeFile(join(work, 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(work, 'run.sh'), 0o755);
    await writeFile(join(work, 'data.txt'), 'data\n');
    await chmod(join(work, 'data.txt'), 0o644);
    must(await sftpBatch(gw.alice, work, ['mkdir /o', 'put run.sh /o/run.sh', 'put data.txt /o/data.txt', 'mkdir /o/dir']), 'put');
    expect(await modes('/o')).toEqual({ 'run.sh': '-rwxr-xr-x', 'data.txt': '-rw-r--r--', dir: 'drwxr-xr-x' });

    must(await sftpBatch(gw.alice, work, ['chmod 755 /o/data.txt', 'chmod 644 /o/run.sh', 'chmod 700 /o/dir']), 'chmod');
    expect(await modes('/o')).toEqual({ 'run.sh': '-rw-r--r--', 'data.txt': '-rwxr-xr-x', dir: 'drwxr-xr-x' });

    // An upload over an executable file: sftp's OPEN carries the local 0644, but the file exists, so
    // (as open(2) with O_TRUNC) its mode stays; `put -p` sets the mode it brings.
    must(await sftpBatch(gw.alice, work, ['put data.txt /o/data.txt']), 'put over');
    expect((await modes('/o'))['data.txt']).toBe('-rwxr-xr-x');
    must(await sftpBatch(gw.alice, work, ['put -p data.txt /o/data.txt']), 'put -p over');
    expect((await modes('/o'))['data.txt']).toBe('-rw-r--r--');

    must(await sftpBatch(gw.alice, work, ['chmod 555 /o/run.sh']), 'chmod 555');
    expect((await modes('/o'))['run.sh']).toBe('-r-xr-xr-x');
    must(await sftpBatch(gw.alice, work, ['chmod 755 /o/run.sh', 'get -p /o/run.sh got.sh']), 'get -p');
    expect((await stat(join(work, 'got.sh'))).mode & 0o777).toBe(0o755);
  });

  describe.skipIf(sshfsSkip)('through sshfs', () => {
    it('rsync -a, cp -p and tar x keep execute bits both ways; git sees no mode change', async () => {
      const src = join(work, 'tree');
      await mkdir(join(src, 'bin'), { recursive: true });
      await writeFile(join(src, 'bin', 'tool'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      await writeFile(join(src, 'readme'), 'plain\n', { mode: 0o644 });
      await writeFile(join(src, 'private'), 'secret\n', { mode: 0o600 });
      const mnt = join(work, 'mnt');
      await mkdir(mnt);
      let mount: SshfsMount | undefined;
      try {
        mount = await mountSshfs(gw.alice, mnt);
        await sh(
          `rsync -a ${src}/ ${mnt}/r/ && cp -p ${src}/bin/tool ${mnt}/copied && tar -C ${src} -cf - . | tar -C ${mnt} --one-top-level=t -xf -`,
        );
        const shown = await sh(`cd ${mnt} && stat -c '%A %n' r/bin/tool r/readme copied t/bin/tool t/readme`);
        expect(shown.split('\n').filter(Boolean)).toEqual([
          '-rwxr-xr-x r/bin/tool',
          '-rw-r--r-- r/readme',
          '-rwxr-xr-x copied',
          '-rwxr-xr-x t/bin/tool',
          '-rw-r--r-- t/readme',
        ]);
        // Back out again: the executable stays executable.
        await sh(`rsync -a ${mnt}/r/ ${work}/back/ && test -x ${work}/back/bin/tool && ! test -x ${work}/back/readme`);
        // A second rsync -a finds nothing to send for the executable (no mode change to make).
        expect(await sh(`rsync -ai ${src}/bin/ ${mnt}/r/bin/`)).toBe('');
        // git in the mount: an executable committed, checked out again, and no mode change reported.
        await sh(
          `cd ${mnt} && git init -q g && cd g && git config user.email t@t && git config user.name t && ` +
            `cp -p ${src}/bin/tool . && git add tool && git commit -qm one && rm tool && git checkout -q tool`,
        );
        expect(await sh(`cd ${mnt}/g && git status --porcelain && git diff --stat`)).toBe('');
      } finally {
        await mount?.unmount();
      }
      expect(await modes('/r/bin')).toEqual({ tool: '-rwxr-xr-x' });
    });
  });
});
