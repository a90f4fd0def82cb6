import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, sftpBatch, type RunResult } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * PuTTY's psftp and pscp (Debian's putty-tools): PuTTY's own SSH and SFTP
 * code, which WinSCP and FileZilla are built on. Batch mode, the host key
 * pinned by its SHA-256 fingerprint (from ssh-keyscan), a password login and
 * a key converted to PuTTY's format by puttygen.
 */
const PEERS = ['psftp', 'pscp', 'puttygen', 'ssh-keyscan', 'sftp', 'ssh-keygen'];
const SUITE = 'PuTTY (psftp, pscp) against a gateway';
const skip = peersOrSkip(SUITE, ...PEERS);

let gw: Gateway;
let work: string;
let hostKey: string;
let ppk: string;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The gateway's Ed25519 host key as PuTTY's -hostkey takes it: SHA256:base64, unpadded. */
async function hostKeyFingerprint(port: number): Promise<string> {
  const scan = must(await run('ssh-keyscan', ['-p', String(port), '-t', 'ed25519', '127.0.0.1'], { timeoutMs: 30_000 }), 'ssh-keyscan');
  const blob = scan.stdout
    .split('\n')
    .find((l) => l.includes(' ssh-ed25519 '))
    ?.split(' ')[2];
  if (blob === undefined) throw new Error(`ssh-keyscan found no ed25519 key:\n${scan.stdout}${scan.stderr}`);
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/** psftp or pscp in batch mode, as alice with the PuTTY key (or her password). */
function putty(tool: 'psftp' | 'pscp', args: string[], password = false): Promise<RunResult> {
  const auth = password ? ['-pw', gw.password] : ['-i', ppk];
  return run(tool, ['-batch', '-P', String(gw.port), '-hostkey', hostKey, ...auth, ...args], { cwd: work, timeoutMs: 120_000 });
}

async function psftp(commands: string[], password = false): Promise<RunResult> {
  const script = join(work, `psftp-${randomBytes(6).toString('hex')}.txt`);
  await writeFile(script, commands.join('\n') + '\n');
  return putty('psftp', ['-b', script, 'alice@127.0.0.1'], password);
}

/** Every file under `dir`, relative path → sha256. */
async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out[relative(dir, join(entry.parentPath, entry.name))] = sha(await readFile(join(entry.parentPath, entry.name)));
  }
  return out;
}

/** A file's stored bytes, fetched with OpenSSH's sftp as alice. */
async function stored(path: string): Promise<Buffer> {
  const local = join(work, `stored-${randomBytes(6).toString('hex')}`);
  must(await sftpBatch(gw.alice, work, [`get "${path}" ${local}`]), `sftp get ${path}`);
  return readFile(local);
}

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers(...PEERS);
  gw = await startGateway({ fsChunks: true, chunkSize: 256 * 1024 });
  work = await mkdtemp(join(tmpdir(), 'capstan-putty-'));
  hostKey = await hostKeyFingerprint(gw.port);
  ppk = join(work, 'alice.ppk');
  must(await run('puttygen', [gw.keyFile, '-O', 'private', '-o', ppk], { timeoutMs: 30_000 }), 'puttygen');
});
afterAll(async () => {
  await gw?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)(SUITE, () => {
  it('psftp: put, reput and reget resume, mv, chmod, del, mkdir and rmdir; bytes as sent', async () => {
    const data = randomBytes(1_000_000);
    await writeFile(join(work, 'whole.bin'), data);
    await writeFile(join(work, 'part.bin'), data.subarray(0, 400_000));
    const r = must(
      await psftp([
        'mkdir /ps',
        'cd /ps',
        'put part.bin r.bin',
        'reput whole.bin r.bin',
        'put whole.bin w.bin',
        'mv w.bin moved.bin',
        'chmod 600 moved.bin',
        'mkdir sub',
        'rmdir sub',
        'ls',
      ]),
      'psftp',
    );
    expect(r.stdout).toMatch(/reput: restarting at file position 400000/);
    expect(sha(await stored('/ps/r.bin'))).toBe(sha(data));
    expect(sha(await stored('/ps/moved.bin'))).toBe(sha(data));

    await writeFile(join(work, 'got.bin'), data.subarray(0, 123_456));
    must(await psftp(['reget /ps/moved.bin got.bin', 'del /ps/moved.bin'], true), 'psftp reget, with a password');
    expect(sha(await readFile(join(work, 'got.bin')))).toBe(sha(data));
    const gone = await psftp(['get /ps/moved.bin gone.bin']);
    expect(gone.code).not.toBe(0);
    expect(gone.stdout + gone.stderr).toMatch(/no such file/i);
  });

  it('pscp -r copies a tree up and back byte-identical', async () => {
    const src = join(work, 'tree');
    const files: Record<string, Buffer> = {
      'big.bin': randomBytes(700_000),
      'a/b/deep.txt': Buffer.from('deep\n'),
      'a/empty': Buffer.alloc(0),
    };
    for (const [name, data] of Object.entries(files)) {
      await mkdir(join(src, name, '..'), { recursive: true });
      await writeFile(join(src, name), data);
    }
    must(await psftp(['mkdir /pscp']), 'psftp mkdir');
    must(await putty('pscp', ['-r', '-p', 'tree', 'alice@127.0.0.1:/pscp/']), 'pscp upload');
    must(await putty('pscp', ['-r', 'alice@127.0.0.1:/pscp/tree', 'back'], true), 'pscp download');
    expect(await digests(join(work, 'back'))).toEqual(await digests(src));
    expect(sha(await stored('/pscp/tree/big.bin'))).toBe(sha(files['big.bin']!));
  });
});
