import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { hasBinary, peersOrSkip, requirePeers, run, skipNotice } from '../helpers/openssh.js';
import type { Gateway } from './gateway-fixture.js';
import { sha256Hex as sha, startPeerGateway, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * libssh's SFTP client (not libssh2): the C library behind KDE's sftp://,
 * Remmina and other desktop tools, from Debian's libssh-dev, driven by
 * test/helpers/libssh-client.c, which this suite compiles (without
 * -Werror: a newer libssh may deprecate a call it makes). What it stored is
 * read back through OpenSSH's sftp.
 *
 * libssh sends SYMLINK's strings in the draft's order (the link's path
 * first) to any server that does not identify as OpenSSH; before capstan
 * read it that way, its `sftp_symlink(target, link)` failed on an existing
 * target, or made a link named after the target.
 */
const SUITE = 'libssh against a gateway';
const SOURCE = fileURLToPath(new URL('../helpers/libssh-client.c', import.meta.url));
const HEADER = '/usr/include/libssh/sftp.h';

function libsshMissing(): string | undefined {
  if (!hasBinary('cc')) return 'not installed: cc (gcc), to build the libssh client';
  return existsSync(HEADER) ? undefined : `not installed: ${HEADER} (libssh-dev)`;
}
const skip = peersOrSkip(SUITE, 'sftp', 'ssh-keygen') ?? skipNotice(libsshMissing(), SUITE);

let peer: PeerGateway;
let gw: Gateway;
let work: string;
let client: string;

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers('sftp', 'ssh-keygen'); // under CI=true a missing cc or libssh-dev already failed the file at load
  peer = await startPeerGateway('capstan-libssh-');
  ({ gw, work } = peer);
  client = join(work, 'libssh-client');
  must(await run('cc', ['-O1', '-Wall', '-o', client, SOURCE, '-lssh'], { timeoutMs: 60_000 }), 'cc libssh-client.c');
});
afterAll(() => peer?.close());

describe.skipIf(skip)(SUITE, () => {
  it('logs in with a password; upload, download, overwrite with fsync, a symbolic link, rename, utimes, readdir, statvfs; failures change nothing', async () => {
    const data = randomBytes(900_000); // several chunks of 256 KiB, in 64 KiB writes
    const input = join(work, 'in.bin');
    const output = join(work, 'out.bin');
    await writeFile(input, data);
    const r = must(await run(client, [String(gw.port), 'alice', gw.password, input, output], { timeoutMs: 120_000 }), 'libssh-client');
    const NO_SUCH_FILE = 2;
    const FAILURE = 4;
    expect(JSON.parse(r.stdout)).toEqual({
      uploaded: data.length,
      downloaded: data.length,
      readlink: 'up.bin',
      linkIsLink: true,
      throughLinkSize: data.length,
      editedSize: 11,
      mtime: 1_200_000_000,
      entries: 3,
      statvfs: true,
      canonical: '/ls/up.bin',
      openInMissingDir: NO_SUCH_FILE,
      rmdirNotEmpty: FAILURE,
      unlinkMissing: NO_SUCH_FILE,
      symlinkOverFile: FAILURE,
    });
    expect(sha(await readFile(output))).toBe(sha(data));
    expect(sha(await peer.stored('/ls/up.bin'))).toBe(sha(data));
    expect((await peer.stored('/ls/edited.txt')).toString()).toBe('Jello world');
    const listed = await peer.listing('/ls');
    expect(listed).toMatch(/^l.* link -> up\.bin$/m);
    expect(sha(await peer.stored('/ls/link'))).toBe(sha(data));
  });
});
