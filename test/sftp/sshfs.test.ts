import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuseUnavailable, missing, mountSshfs, run, sftpBatch, skipNotice, type SshfsMount } from '../helpers/openssh.js';
import { connectSsh2, sftpOf, startGateway, type Gateway } from './gateway-fixture.js';

/**
 * sshfs (FUSE) on the gateway: the client that writes the way programs do
 * (random writes, truncates, renames over files, rsync's temp files). Every
 * operation is done twice, through the mount and on a local mirror; after
 * unmounting, the whole tree is fetched back with OpenSSH's sftp and
 * compared byte for byte with the mirror.
 */
const skip = skipNotice(fuseUnavailable() ?? missing('sftp', 'rsync', 'dd', 'truncate'), 'sshfs test');
const CHUNK = 64 * 1024;
const OLD = new Date('2010-06-07T08:09:10Z');

let gw: Gateway;
let work: string;

beforeAll(async () => {
  gw = await startGateway({ chunkSize: CHUNK });
  work = await mkdtemp(join(tmpdir(), 'capstan-sshfs-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function sh(script: string, cwd = work): Promise<string> {
  const r = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`shell step failed (${r.code}): ${script}\n${r.stderr}`);
  return r.stdout;
}

/** path → sha256 for files, 'dir' for directories, relative to root. */
async function snapshot(root: string, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
    const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      out.set(path, 'dir');
      for (const [k, v] of await snapshot(root, path)) out.set(k, v);
    } else {
      const bytes = await readFile(join(root, path));
      out.set(path, `${bytes.length}:${createHash('sha256').update(bytes).digest('hex')}`);
    }
  }
  return out;
}

async function makeSourceTree(src: string): Promise<void> {
  const sizes = [0, 1, 63, 65, 4095, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 300_000, 1_048_579];
  await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
  await mkdir(join(src, 'ünïcode dir'), { recursive: true });
  for (const [i, n] of sizes.entries()) {
    const dir = i % 3 === 0 ? src : i % 3 === 1 ? join(src, 'sub') : join(src, 'sub', 'deeper');
    await writeFile(join(dir, `f${n}.bin`), randomBytes(n));
  }
  await writeFile(join(src, 'ünïcode dir', '日本語.txt'), 'こんにちは\n');
  await utimes(join(src, 'sub', 'f4095.bin'), OLD, OLD);
}

describe.skipIf(skip)('sshfs on the gateway', () => {
  it('copies, rsyncs, writes randomly, truncates, moves and removes; every byte checks out through sftp', async () => {
    const src = join(work, 'src');
    const mirror = join(work, 'mirror');
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    await mkdir(join(mirror, 'fs'), { recursive: true });
    await makeSourceTree(src);
    await writeFile(join(work, 'patch.bin'), randomBytes(5000));
    let mount: SshfsMount | undefined;
    try {
      mount = await mountSshfs(gw.alice, mnt);
      await mkdir(join(mnt, 'fs'));
      // The same steps on the mount and on the mirror.
      for (const root of [join(mnt, 'fs'), join(mirror, 'fs')]) {
        await sh(`cp -r "${src}" "${root}/copied"`);
        await sh(`rsync -a "${src}/" "${root}/rsynced/"`);
        // random writes inside, across a chunk boundary, and past the end (a hole)
        await sh(`dd if=patch.bin of="${root}/copied/f300000.bin" bs=1000 seek=3 count=2 conv=notrunc status=none`);
        await sh(`dd if=patch.bin of="${root}/copied/f300000.bin" bs=1000 seek=65 count=1 conv=notrunc status=none`);
        await sh(`dd if=patch.bin of="${root}/copied/sub/f1.bin" bs=1000 seek=400 count=5 conv=notrunc status=none`);
        await sh(`truncate -s 5000 "${root}/copied/sub/f1048579.bin"`);
        await sh(`truncate -s 200000 "${root}/copied/sub/deeper/f4096.bin"`);
        await sh(`mv "${root}/copied/f0.bin" "${root}/copied/renamed-empty.bin"`);
        await sh(`mv "${root}/copied/sub/deeper" "${root}/moved-deeper"`);
        await sh(`mv -f "${root}/rsynced/sub/deeper/f63.bin" "${root}/rsynced/sub/f1.bin"`); // over an existing file
        await sh(`rm -r "${root}/rsynced/ünïcode dir"`);
        await sh(`echo appended >> "${root}/copied/f65.bin"`);
      }
      // Reads through the mount agree with the mirror while mounted.
      expect(await snapshot(join(mnt, 'fs'))).toEqual(await snapshot(join(mirror, 'fs')));
      const df = await sh(`df -k "${mnt}"`);
      expect(df).toMatch(/\d+/);
    } finally {
      await mount?.unmount();
    }
    // After unmounting: fetch everything with OpenSSH's sftp and compare.
    const back = join(work, 'back');
    await mkdir(back);
    const r = await sftpBatch(gw.alice, back, ['get -r /fs']);
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot(join(back, 'fs'))).toEqual(await snapshot(join(mirror, 'fs')));
    const client = await connectSsh2(gw.port, 'alice', { privateKey: await readFile(gw.keyFile) });
    try {
      const sftp = await sftpOf(client);
      const mtime = (path: string): Promise<number> =>
        new Promise((resolve, reject) => sftp.stat(path, (err, a) => (err ? reject(err) : resolve(a.mtime))));
      // rsync -a kept the source's modification time; cp -r did not.
      expect(await mtime('/fs/rsynced/sub/f4095.bin')).toBe(OLD.getTime() / 1000);
      expect(await mtime('/fs/copied/sub/f4095.bin')).not.toBe(OLD.getTime() / 1000);
    } finally {
      client.end();
    }
    expect(gw.logs.filter((l) => (l.level as number) >= 50 || l.event === 'upload_failed')).toEqual([]);
  });

  it('files changed in place or grown sparse (truncate -s, dd conv=notrunc, rsync --inplace) never pass through the spool whole', async () => {
    const mirror = join(work, 'inplace-mirror');
    const mnt = join(work, 'inplace-mnt');
    await mkdir(mnt);
    await mkdir(mirror);
    await writeFile(join(work, 'big.bin'), randomBytes(4 * 1024 * 1024));
    await writeFile(join(work, 'patch2.bin'), randomBytes(5000));
    // The spool's disk, sampled while the steps run: the files are 4 and 16 MiB.
    const spool = join(gw.dir, 'spool');
    let spoolPeak = 0;
    let sampling = false;
    const sampler = setInterval(() => {
      if (sampling) return;
      sampling = true;
      void (async () => {
        let bytes = 0;
        // A spool file can go between the listing and its stat: counted as nothing.
        for (const f of await readdir(spool)) bytes += (await stat(join(spool, f)).catch(() => ({ blocks: 0 }))).blocks * 512;
        spoolPeak = Math.max(spoolPeak, bytes);
      })().finally(() => (sampling = false));
    }, 20);
    let mount: SshfsMount | undefined;
    try {
      mount = await mountSshfs(gw.alice, mnt);
      await mkdir(join(mnt, 'inplace'));
      for (const root of [join(mnt, 'inplace'), mirror]) {
        await sh(`cp big.bin "${root}/big.bin" && cp big.bin "${root}/rsynced.bin"`);
        await sh(`truncate -s 16M "${root}/sparse.img"`);
        await sh(`dd if=patch2.bin of="${root}/sparse.img" bs=1000 seek=10000 count=5 conv=notrunc status=none`);
        await sh(`dd if=patch2.bin of="${root}/big.bin" bs=1000 seek=2000 count=3 conv=notrunc status=none`);
        await sh(`dd if=patch2.bin of="${root}/big.bin" bs=1 seek=$((4*1024*1024 + 4096)) count=10 conv=notrunc status=none`);
      }
      // rsync's delta transfer writes only the blocks that differ, in place (-I: the sizes, and maybe the mtimes, are equal).
      await sh(`cp big.bin changed.bin && dd if=patch2.bin of=changed.bin bs=1000 seek=3000 count=2 conv=notrunc status=none`);
      for (const root of [join(mnt, 'inplace'), mirror]) await sh(`rsync -I --inplace --no-whole-file changed.bin "${root}/rsynced.bin"`);
      expect(await snapshot(join(mnt, 'inplace'))).toEqual(await snapshot(mirror));
    } finally {
      clearInterval(sampler);
      await mount?.unmount();
    }
    expect(spoolPeak).toBeLessThan(1024 * 1024);
    const back = join(work, 'inplace-back');
    await mkdir(join(back, 'got'), { recursive: true });
    const r = await sftpBatch(gw.alice, back, ['lcd got', 'get inplace/sparse.img', 'get inplace/big.bin', 'get inplace/rsynced.bin']);
    expect(r.code, r.stderr).toBe(0);
    expect(await snapshot(join(back, 'got'))).toEqual(await snapshot(mirror));
  }, 120_000);

  it('an idle mount outlives idle_timeout with -o ServerAliveInterval (the same connection), or comes back with -o reconnect', async () => {
    const local = await startGateway({ chunkSize: CHUNK, idleTimeoutMs: 1_500 });
    const [kept, again] = [join(work, 'kept'), join(work, 'again')];
    await mkdir(kept);
    await mkdir(again);
    const mounts: SshfsMount[] = [];
    try {
      mounts.push(await mountSshfs(local.alice, kept, ['ServerAliveInterval=1']));
      mounts.push(await mountSshfs(local.alice, again, ['reconnect']));
      await sh(`echo one > "${kept}/a.txt"`);
      await new Promise((resolve) => setTimeout(resolve, 4_000)); // idle: more than two idle timeouts
      expect(await sh(`cat "${kept}/a.txt" && echo two > "${kept}/b.txt" && cat "${again}/b.txt"`)).toBe('one\ntwo\n');
    } finally {
      for (const m of mounts) await m.unmount();
      await local.close();
    }
    // The keepalive mount kept its connection; the other one was closed and opened again.
    expect(local.logs.filter((l) => l.event === 'connect')).toHaveLength(3);
    expect(local.logs.filter((l) => l.reason === 'idle timeout')).toHaveLength(1);
  });
});
