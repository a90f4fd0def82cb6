import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, type RunResult } from '../helpers/openssh.js';
import type { Gateway } from './gateway-fixture.js';
import { sha256Hex as sha, startPeerGateway, treeDigests, writeTree, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * PuTTY's psftp and pscp (Debian's putty-tools): PuTTY's own SSH and SFTP
 * code, which WinSCP and FileZilla are built on. Batch mode, the host key
 * pinned by its SHA-256 fingerprint (from ssh-keyscan), a password login and
 * a key converted to PuTTY's format by puttygen.
 */
const PEERS = ['psftp', 'pscp', 'puttygen', 'ssh-keyscan', 'sftp', 'ssh-keygen'];
const SUITE = 'PuTTY (psftp, pscp) against a gateway';
const skip = peersOrSkip(SUITE, ...PEERS);

let peer: PeerGateway;
let gw: Gateway;
let work: string;
const stored = (path: string): Promise<Buffer> => peer.stored(path);
let hostKey: string;
let ppk: string;

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

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers(...PEERS);
  peer = await startPeerGateway('capstan-putty-');
  ({ gw, work } = peer);
  hostKey = await hostKeyFingerprint(gw.port);
  ppk = join(work, 'alice.ppk');
  must(await run('puttygen', [gw.keyFile, '-O', 'private', '-o', ppk], { timeoutMs: 30_000 }), 'puttygen');
});
afterAll(() => peer?.close());

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
    await writeTree(src, files);
    must(await psftp(['mkdir /pscp']), 'psftp mkdir');
    must(await putty('pscp', ['-r', '-p', 'tree', 'alice@127.0.0.1:/pscp/']), 'pscp upload');
    must(await putty('pscp', ['-r', 'alice@127.0.0.1:/pscp/tree', 'back'], true), 'pscp download');
    expect(await treeDigests(join(work, 'back'))).toEqual(await treeDigests(src));
    expect(sha(await stored('/pscp/tree/big.bin'))).toBe(sha(files['big.bin']!));
  });

  it('pscp -scp (the legacy scp protocol) copies a tree up and back byte-identical', async () => {
    const src = join(work, 'legacy');
    const files: Record<string, Buffer> = {
      'big.bin': randomBytes(700_000),
      'a/b/deep.txt': Buffer.from('deep\n'),
      'a/empty': Buffer.alloc(0),
      'with space.txt': Buffer.from('space\n'),
    };
    await writeTree(src, files);
    must(await psftp(['mkdir /pscp-legacy']), 'psftp mkdir');
    must(await putty('pscp', ['-scp', '-r', '-p', 'legacy', 'alice@127.0.0.1:/pscp-legacy/']), 'pscp -scp upload');
    must(await putty('pscp', ['-scp', '-r', 'alice@127.0.0.1:/pscp-legacy/legacy', 'legacy-back']), 'pscp -scp download');
    expect(await treeDigests(join(work, 'legacy-back'))).toEqual(await treeDigests(src));
    expect(sha(await stored('/pscp-legacy/legacy/with space.txt'))).toBe(sha(files['with space.txt']!));
    // A wildcard is expanded by the server end, as a shell there would.
    must(await putty('pscp', ['-scp', 'alice@127.0.0.1:/pscp-legacy/legacy/*.bin', 'globbed.bin']), 'pscp -scp wildcard');
    expect(sha(await readFile(join(work, 'globbed.bin')))).toBe(sha(files['big.bin']!));
  });
});
