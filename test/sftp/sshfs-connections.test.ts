import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AbortOptions } from '../../src/errors.js';
import { ForwardingChunkStore, type ChunkAddress } from '../../src/store/index.js';
import { fuseUnavailable, missing, mountSshfs, run, sftpBatch, skipNotice } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * sshfs with several SSH connections (`-o max_conns=4`, sshfs 3.7 on): the
 * kernel sends a file's release (sshfs's CLOSE) after close(2) returned, on
 * one connection, and the next call on that name (git's rename of
 * config.lock, rsync's utimes and rename of its temporary file, a script's
 * rm) may reach the gateway on another one first. Before the gateway
 * serialised those calls with the commit (UploadOverlay.exclusive), `git
 * init` failed with "could not lock config file", a removed file could
 * come back, and `git commit` could not read back the message it had just
 * written. Checked through the mount, and after unmounting with
 * OpenSSH's sftp, so what is asserted is what was stored. The store takes
 * 3 ms per put, as a remote store (S3) does: a commit then lasts long
 * enough for the next call to overtake it, as it did on a real disk with
 * fsync.
 */
class SlowChunkStore extends ForwardingChunkStore {
  override async put(bytes: Uint8Array, options?: AbortOptions): Promise<ChunkAddress> {
    await new Promise((resolve) => setTimeout(resolve, 3));
    return this.inner.put(bytes, options);
  }
}

const skip = skipNotice(fuseUnavailable() ?? missing('sftp', 'rsync', 'git'), 'sshfs max_conns test');

let gw: Gateway;
let work: string;

beforeAll(async () => {
  gw = await startGateway({ chunkSize: 64 * 1024, wrapChunks: (store) => new SlowChunkStore(store) });
  work = await mkdtemp(join(tmpdir(), 'capstan-sshfs-conns-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/**
 * A bash script, run with `cwd` outside the mount: the gateway runs in this
 * process, and a child whose working directory is in the mount would block
 * libuv's spawn (scripts cd themselves).
 */
async function sh(script: string): Promise<string> {
  const r = await run('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: work,
    timeoutMs: 180_000,
    env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.org' },
  });
  if (r.code !== 0) throw new Error(`shell step failed (${r.code}): ${script}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe.skipIf(skip)('sshfs with four connections', () => {
  it('git, rsync -a, and loops that write then rename, write then remove, or append leave what one connection leaves', async () => {
    const src = join(work, 'src');
    await mkdir(join(src, 'nested'), { recursive: true });
    for (let i = 0; i < 30; i++) await writeFile(join(src, i % 2 === 0 ? 'nested' : '', `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const mount = await mountSshfs(gw.alice, mnt, ['max_conns=4']);
    try {
      // git takes a lock file for every change: write X.lock, close, rename it over X.
      await sh(`cd "${mnt}" && git init -q -b main repo && cd repo && cp -r "${src}/." . && git add -A && git commit -qm one
        git checkout -qb side && echo more >> f1.txt && git commit -qam two && git checkout -q main && git merge -q side && git gc -q`);
      expect(await sh(`cd "${mnt}/repo" && git status --porcelain && find .git -name '*.lock'`)).toBe('');
      expect(await sh(`cd "${mnt}/repo" && git fsck --no-dangling 2>&1 && git log --format=%s`)).toBe('two\none\n');
      // rsync writes .NAME.XXXXXX, sets its times, renames it: a second run finds nothing to do.
      await sh(`rsync -a "${src}/" "${mnt}/rsynced/"`);
      expect(await sh(`rsync -ai "${src}/" "${mnt}/rsynced/"`)).toBe('');
      await sh(`cd "${mnt}" && mkdir loops && cd loops && for i in $(seq 1 40); do
        printf "v$i" > "tmp.$i" && mv "tmp.$i" "kept.$i"
        printf x > "gone.$i" && rm "gone.$i"
        echo "line $i" >> ../appended.log
      done`);
    } finally {
      await mount.unmount();
    }
    // What was stored, through a fresh OpenSSH session.
    const back = join(work, 'back');
    await mkdir(back);
    const r = await sftpBatch(gw.alice, back, ['get -r /repo', 'get -r /rsynced', 'get -r /loops', 'get /appended.log']);
    expect(r.code, r.stderr).toBe(0);
    expect(await sh(`cd back/repo && git status --porcelain && git fsck --no-dangling 2>&1 && git log --format=%s`)).toBe('two\none\n');
    expect(await sh(`diff -r src back/rsynced && echo same`)).toBe('same\n');
    const loops = (await readdir(join(back, 'loops'))).sort();
    expect(loops).toEqual(Array.from({ length: 40 }, (_, i) => `kept.${i + 1}`).sort());
    for (const name of loops) expect(await readFile(join(back, 'loops', name), 'utf8')).toBe(`v${name.slice(5)}`);
    expect(await readFile(join(back, 'appended.log'), 'utf8')).toBe(Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join(''));
    expect(gw.logs.filter((l) => (l.level as number) >= 50 || l.event === 'upload_failed')).toEqual([]);
  });
});
