import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peersOrSkip, requirePeers, skipNotice, type Target } from '../helpers/openssh.js';
import { pythonModuleMissing, runPythonDriver } from '../helpers/python-driver.js';
import type { Gateway } from './gateway-fixture.js';
import { sha256Hex as sha, startPeerGateway, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * AsyncSSH, the asyncio SSH library of Python programs that move files in
 * parallel: Debian's python3-asyncssh, run by Debian's own python3.
 * test/helpers/asyncssh-client.py does what an AsyncSSH program does,
 * scenario by scenario, and prints what it saw; what it stored is read
 * back here through OpenSSH's sftp.
 *
 * AsyncSSH sends SYMLINK's strings in the draft's order (the link's path
 * first) to any server whose identification is not OpenSSH's or paramiko's;
 * before capstan read it that way, its `symlink(target, link)` made a link
 * named after the target.
 */
const DRIVER = fileURLToPath(new URL('../helpers/asyncssh-client.py', import.meta.url));
const SUITE = 'AsyncSSH against a gateway';
const skip = peersOrSkip(SUITE, 'sftp', 'ssh-keygen') ?? skipNotice(pythonModuleMissing('asyncssh', 'python3-asyncssh'), SUITE);

let peer: PeerGateway;
let gw: Gateway;
let work: string;
const stored = (path: string): Promise<Buffer> => peer.stored(path);

const asyncssh = <T>(scenario: string, t: Target): Promise<T> => runPythonDriver<T>(DRIVER, scenario, t, work);

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers('sftp', 'ssh-keygen'); // under CI=true a missing asyncssh already failed the file at load (skipNotice)
  peer = await startPeerGateway('capstan-asyncssh-');
  ({ gw, work } = peer);
});
afterAll(() => peer?.close());

describe.skipIf(skip)(SUITE, () => {
  it('logs in with a password and with an Ed25519 key', async () => {
    const byPassword = await asyncssh<{ root: string[]; cwd: string }>('login', gw.alicePassword);
    expect(byPassword).toEqual({ root: ['.', '..'], cwd: '/' });
    expect(await asyncssh('login', gw.alice)).toEqual(byPassword);
  });

  it('parallel put and get, a read from near the end, a client-side copy and an upload over a file: every byte back as sent', async () => {
    const data = randomBytes(1_300_000); // several chunks of 256 KiB, many requests in flight
    await writeFile(join(work, 'src.bin'), data);
    const r = await asyncssh<Record<string, unknown>>('transfer', gw.alicePassword);
    const sent = sha(data);
    expect(r).toEqual({ sent, got: sent, tail: true, size: data.length, copySize: data.length });
    expect(sha(await stored('/as/src.bin'))).toBe(sent);
    expect(sha(await stored('/as/copy.bin'))).toBe(sent);
  });

  it('writes at offsets with a hole, fsync, overwrite in place, ftruncate and utime', async () => {
    const r = await asyncssh<Record<string, unknown>>('edit', gw.alice);
    const expected = Buffer.alloc(150_000);
    expected.fill('x', 0, 100_000);
    expected.write('ZZ', 5);
    expect(r).toEqual({ size: 200_010, edited: sha(expected), mtime: 1_200_000_000 });
    expect(sha(await stored('/as/edit.bin'))).toBe(sha(expected));
  });

  it('symlink(target, link) makes `link` point at the target, as OpenSSH then lists it; hard link, posix-rename, rename, rmtree', async () => {
    const r = await asyncssh<Record<string, unknown>>('names', gw.alice);
    expect(r).toEqual({
      cwd: '/as',
      readlink: '/as/target.txt',
      islink: true,
      throughLink: 'the target\n',
      targetIsLink: false,
      hardSize: 11,
      glob: ['/as/copy.bin', '/as/deep', '/as/edit.bin', '/as/hard', '/as/link', '/as/src.bin', '/as/target.txt'],
      statvfs: true,
      deepGone: true,
      entries: ['.', '..', 'copy.bin', 'edit.bin', 'hard', 'link', 'src.bin', 'target.txt'],
    });
    const listed = await peer.listing('/as');
    expect(listed).toMatch(/^l.* link -> \/as\/target\.txt$/m);
    expect(listed).toMatch(/^-.* target\.txt$/m);
    expect((await stored('/as/link')).toString()).toBe('the target\n');
    expect((await stored('/as/hard')).toString()).toBe('other\n');
  });

  it('failures arrive as SFTP status codes and change nothing', async () => {
    const r = await asyncssh<Record<string, number | string | null>>('errors', gw.alice);
    const NO_SUCH_FILE = 2;
    const FAILURE = 4;
    expect(r).toEqual({
      removeMissing: NO_SUCH_FILE,
      statMissing: NO_SUCH_FILE,
      openInMissingDir: NO_SUCH_FILE,
      mkdirExisting: FAILURE,
      rmdirNotEmpty: FAILURE,
      symlinkOverFile: FAILURE,
      stillThere: 'kept\n',
    });
    expect((await stored('/ae/file')).toString()).toBe('kept\n');
  });
});
