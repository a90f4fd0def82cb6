import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuotaGuard } from '../../src/quota/index.js';
import { must, rcloneOverSftp } from '../helpers/backup-tools.js';
import { missing, sftpBatch, skipNotice } from '../helpers/openssh.js';
import { startQuotaGateway, type Gateway } from './gateway-fixture.js';

/** A quota as OpenSSH's sftp meets it: the refused upload fails the batch, the previous version stays. */
const noSftp = skipNotice(missing('sftp', 'ssh-keygen'), 'OpenSSH quota tests');

let gw: Gateway & { guard: QuotaGuard };
let guard: QuotaGuard;
let work: string;

beforeAll(async () => {
  if (noSftp !== undefined) return;
  gw = await startQuotaGateway('alice bytes=64K files=10\n');
  guard = gw.guard;
  work = await mkdtemp(join(tmpdir(), 'capstan-quota-openssh-'));
});
afterAll(async () => {
  await gw?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(noSftp !== undefined)('quotas with OpenSSH sftp', () => {
  it('refuses the upload past the quota and keeps the earlier version', async () => {
    await writeFile(join(work, 'small'), Buffer.alloc(40 * 1024, 1));
    await writeFile(join(work, 'big'), Buffer.alloc(100 * 1024, 2));
    const first = await sftpBatch(gw.alice, work, ['put small f']);
    expect(first.code, first.stderr).toBe(0);
    const refused = await sftpBatch(gw.alice, work, ['put big f']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Failure|quota/i);
    const back = await sftpBatch(gw.alice, work, ['ls -l f']);
    expect(back.stdout).toMatch(/40960/);
  });

  it('cp (copy-data, a relink) counts like an upload of that size, and is refused past the quota', async () => {
    await writeFile(join(work, 'tiny'), Buffer.alloc(10 * 1024, 3));
    const put = await sftpBatch(gw.alice, work, ['put tiny t1']);
    expect(put.code, put.stderr).toBe(0);
    const before = { ...(await guard.usageOf('alice', gw.root)) };
    const copied = await sftpBatch(gw.alice, work, ['cp t1 t2']);
    expect(copied.code, copied.stderr).toBe(0);
    const after = { ...(await guard.usageOf('alice', gw.root)) };
    expect([after.bytes - before.bytes, after.files - before.files]).toEqual([10 * 1024, 1]);
    const refused = await sftpBatch(gw.alice, work, ['cp t1 t3']); // 70 KiB > 64 KiB
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Failure|quota/i);
    const listed = await sftpBatch(gw.alice, work, ['ls']);
    expect(listed.stdout).toMatch(/t2/);
    expect(listed.stdout).not.toMatch(/t3/);
    expect((await guard.usageOf('alice', gw.root)).bytes).toBe(after.bytes);
  });

  it('df shows the quota as the size and what it leaves as free (statvfs@openssh.com)', async () => {
    const usage = await guard.usageOf('alice', gw.root);
    const out = await sftpBatch(gw.alice, work, ['df /', 'df -i /']);
    expect(out.code, out.stderr).toBe(0);
    // OpenSSH prints 1 KiB units: 64K is 16 blocks of 4 KiB, and what is left is counted in whole blocks.
    const freeKiB = Math.floor((64 * 1024 - usage.bytes) / 4096) * 4;
    expect(out.stdout).toMatch(new RegExp(`^\\s*64\\s+${64 - freeKiB}\\s+${freeKiB}\\s`, 'm'));
    expect(out.stdout).toMatch(new RegExp(`^\\s*10\\s+${usage.files}\\s+${10 - usage.files}\\s`, 'm'));
    // rclone's sftp backend asks the same extension for `rclone about`.
    const account = { port: gw.alice.port, user: gw.alice.user, keyFile: gw.alice.keyFile ?? '' };
    const about = must(await rcloneOverSftp(account, work, ['about', ':sftp:', '--json']), 'rclone about');
    expect(JSON.parse(about.stdout)).toMatchObject({ total: 64 * 1024, free: freeKiB * 1024 });
  });
});
