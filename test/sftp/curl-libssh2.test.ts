import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, type RunResult } from '../helpers/openssh.js';
import type { Gateway } from './gateway-fixture.js';
import { sha256Hex as sha, startPeerGateway, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * curl's sftp://, which is libssh2's SFTP (Debian's curl is built with it):
 * another implementation of the client side than OpenSSH's, paramiko's or
 * ssh2's, used by scripts, PHP and many embedded tools. Uploads with
 * --ftp-create-dirs, a resumed upload (-C -), ranged downloads, listings and
 * the quote commands (-Q).
 */
const PEERS = ['curl', 'sftp', 'ssh-keygen'];
const SUITE = 'curl (libssh2) against a gateway';
const skip = peersOrSkip(SUITE, ...PEERS);

let peer: PeerGateway;
let gw: Gateway;
let work: string;
const stored = (path: string): Promise<Buffer> => peer.stored(path);

/** curl on sftp://127.0.0.1:PORT/PATH as alice, with her key, or her password when `password` is set. */
function curl(path: string, args: string[], password = false): Promise<RunResult> {
  const auth = password ? ['-u', `alice:${gw.password}`] : ['-u', 'alice:', '--key', gw.keyFile, '--pubkey', `${gw.keyFile}.pub`];
  return run('curl', ['-sS', '--insecure', ...auth, ...args, `sftp://127.0.0.1:${gw.port}${path}`], { cwd: work, timeoutMs: 120_000 });
}

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers(...PEERS);
  peer = await startPeerGateway('capstan-curl-');
  ({ gw, work } = peer);
});
afterAll(() => peer?.close());

describe.skipIf(skip)(SUITE, () => {
  it('uploads into new folders, downloads whole and by range, resumes an upload, with a key and with a password', async () => {
    const data = randomBytes(900_000);
    await writeFile(join(work, 'data.bin'), data);
    must(await curl('/cu/new/data.bin', ['-T', 'data.bin', '--ftp-create-dirs']), 'curl upload');
    expect(sha(await stored('/cu/new/data.bin'))).toBe(sha(data));

    must(await curl('/cu/new/data.bin', ['-o', 'back.bin'], true), 'curl download');
    expect(sha(await readFile(join(work, 'back.bin')))).toBe(sha(data));
    must(await curl('/cu/new/data.bin', ['-r', '300000-599999', '-o', 'range.bin']), 'curl range');
    expect(sha(await readFile(join(work, 'range.bin')))).toBe(sha(data.subarray(300_000, 600_000)));

    await writeFile(join(work, 'part.bin'), data.subarray(0, 250_000));
    must(await curl('/cu/resumed.bin', ['-T', 'part.bin']), 'curl partial upload');
    must(await curl('/cu/resumed.bin', ['-C', '-', '-T', 'data.bin']), 'curl resumed upload');
    expect(sha(await stored('/cu/resumed.bin'))).toBe(sha(data));
  });

  it('lists a folder and runs quote commands; a failing one is an error and changes nothing after it', async () => {
    must(
      await curl('/cu/', ['-Q', 'rename /cu/resumed.bin /cu/moved.bin', '-Q', 'mkdir /cu/d', '-Q', 'rmdir /cu/d', '-o', '/dev/null']),
      'curl -Q',
    );
    const listing = must(await curl('/cu/', ['-l']), 'curl -l').stdout;
    expect(listing.split('\n').filter(Boolean).sort()).toEqual(['.', '..', 'moved.bin', 'new']);
    const failed = await curl('/cu/', ['-Q', 'rm /cu/nope', '-Q', 'rm /cu/moved.bin']);
    expect(failed.code).toBe(21); // CURLE_QUOTE_ERROR
    expect(failed.stderr).toMatch(/No such file/);
    expect((await stored('/cu/moved.bin')).length).toBe(900_000);
  });
});
