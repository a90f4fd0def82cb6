import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, sftpBatch, skipNotice, type Target } from '../helpers/openssh.js';
import { pythonModuleMissing, runPythonDriver } from '../helpers/python-driver.js';
import type { Gateway } from './gateway-fixture.js';
import { sha256Hex as sha, startPeerGateway, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * paramiko, the Python SSH library many scripts and tools (Ansible, Fabric)
 * use for SFTP: Debian's python3-paramiko, run by Debian's own python3
 * (another python3 on PATH may not have it). test/helpers/paramiko-client.py
 * does what a paramiko program does, scenario by scenario, and prints what it
 * saw; what it stored is read back here through OpenSSH's sftp.
 */
const DRIVER = fileURLToPath(new URL('../helpers/paramiko-client.py', import.meta.url));
const SUITE = 'paramiko against a gateway';
const skip = peersOrSkip(SUITE, 'sftp', 'ssh-keygen') ?? skipNotice(pythonModuleMissing('paramiko', 'python3-paramiko'), SUITE);

let peer: PeerGateway;
let gw: Gateway;
let work: string;
const stored = (path: string): Promise<Buffer> => peer.stored(path);

const paramiko = <T>(scenario: string, t: Target): Promise<T> => runPythonDriver<T>(DRIVER, scenario, t, work);

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers('sftp', 'ssh-keygen'); // under CI=true a missing paramiko already failed the file at load (skipNotice)
  peer = await startPeerGateway('capstan-paramiko-');
  ({ gw, work } = peer);
  await writeFile(join(work, 'small.txt'), 'small file\n');
  must(await sftpBatch(gw.alice, work, ['mkdir /pm']), 'mkdir /pm');
});
afterAll(() => peer?.close());

describe.skipIf(skip)(SUITE, () => {
  it('logs in with a password and with an Ed25519 key', async () => {
    const byPassword = await paramiko<{ root: string[]; cwd: string }>('login', gw.alicePassword);
    expect(byPassword).toEqual({ root: ['pm'], cwd: '/' });
    expect(await paramiko('login', gw.alice)).toEqual(byPassword);
  });

  it('put, get, prefetch, readv, check-file and pipelined writes: every byte back as sent', async () => {
    const data = randomBytes(1_500_000); // several chunks of 256 KiB
    await writeFile(join(work, 'src.bin'), data);
    const r = await paramiko<Record<string, unknown>>('transfer', gw.alicePassword);
    const sent = sha(data);
    expect(r).toMatchObject({ putSize: data.length, sent, got: sent, prefetched: sent, readv: [true, true, true], check: sent });
    expect(r['pipelinedSize']).toBe(3_200_000);
    expect(sha(await stored('/pm/src.bin'))).toBe(sent);
    expect(sha(await stored('/pm/pipelined.bin'))).toBe(r['pipelined']);
  });

  it('seek past the end, append, overwrite in place, truncate and utime', async () => {
    const r = await paramiko<Record<string, unknown>>('edit', gw.alice);
    const hex = (s: string | Buffer): string => Buffer.from(s).toString('hex');
    expect(r).toEqual({
      hole: hex(Buffer.concat([Buffer.from('hello'), Buffer.alloc(5), Buffer.from('world')])),
      appended: hex(Buffer.concat([Buffer.from('hello'), Buffer.alloc(5), Buffer.from('world!')])),
      overwritten: hex(Buffer.concat([Buffer.from('Jello'), Buffer.alloc(5), Buffer.from('world!')])),
      truncated: hex('Jel'),
      mtime: 1_000_000_000,
      fstatSize: 1,
      final: hex('J'),
    });
    expect((await stored('/pm/edit.txt')).toString()).toBe('J');
  });

  it('relative paths after chdir, 600 entries listed three ways, rename, posix-rename over a file, symlinks', async () => {
    const r = await paramiko<Record<string, unknown>>('names', gw.alice);
    expect(r).toEqual({
      cwd: '/pm',
      listdir: 600,
      listdirIter: 600,
      allFiles: true,
      readlink: 'renamed.txt',
      lstatIsLink: true,
      statThroughLink: 11,
      normalize: '/pm/renamed.txt',
      afterRemove: 599,
      entries: ['edit.txt', 'link', 'many', 'pipelined.bin', 'renamed.txt', 'src.bin'],
    });
    expect((await stored('/pm/renamed.txt')).toString()).toBe('small file\n');
  });

  it('failures arrive as the errors paramiko maps to errno, and change nothing', async () => {
    const r = await paramiko<Record<string, { errno: number | null; text: string } | number | null>>('errors', gw.alice);
    const ENOENT = 2;
    expect(r['removeMissing']).toMatchObject({ errno: ENOENT });
    expect(r['statMissing']).toMatchObject({ errno: ENOENT });
    expect(r['openInMissingDir']).toMatchObject({ errno: ENOENT });
    expect(r['renameMissing']).toMatchObject({ errno: ENOENT });
    expect(r['listdirOfFile']).not.toBeNull();
    expect(r['mkdirExisting']).not.toBeNull();
    expect(r['rmdirNotEmpty']).not.toBeNull();
    expect(r['stillThere']).toBe(11);
    expect((await stored('/pe/file')).toString()).toBe('small file\n');
  });
});
