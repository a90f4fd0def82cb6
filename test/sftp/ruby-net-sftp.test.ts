import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, skipNotice } from '../helpers/openssh.js';
import { sha256Hex as sha, startPeerGateway, treeDigests, writeTree, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * Ruby's net-sftp 4.0 over net-ssh 7.0 (Debian's ruby-net-sftp), a pure-Ruby
 * SSH under Capistrano, Chef and Vagrant. It negotiates ECDH on P-521 and
 * SFTP version 3 from the gateway's offer, and its recursive upload runs 16
 * requests at once, sending a folder's MKDIR and the OPENs inside it
 * without waiting for the MKDIR's reply. test/helpers/net-sftp-client.rb
 * drives it; what it stored is read back through OpenSSH's sftp.
 */
const SUITE = 'Ruby net-sftp against a gateway';
const CLIENT = fileURLToPath(new URL('../helpers/net-sftp-client.rb', import.meta.url));

const libraryMissing = (): string | undefined =>
  spawnSync('ruby', ['-e', "require 'net/sftp'"]).status === 0 ? undefined : 'not installed: Ruby net-sftp (ruby-net-sftp)';
const skip = peersOrSkip(SUITE, 'sftp', 'ruby') ?? skipNotice(libraryMissing(), SUITE);

let peer: PeerGateway;

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers('sftp', 'ruby');
  peer = await startPeerGateway('capstan-net-sftp-');
});
afterAll(() => peer?.close());

describe.skipIf(skip)(SUITE, () => {
  it('uploads a file and a tree six folders deep, downloads both, reads and writes lines, setstat, rename, symlink, errors as codes', async () => {
    const { gw, work } = peer;
    const data = randomBytes(700_000);
    await writeFile(join(work, 'in.bin'), data);
    const files: Record<string, Buffer> = { 'top.txt': Buffer.from('top\n') };
    let folder = '';
    for (let depth = 1; depth <= 6; depth++) {
      folder = join(folder, `d${depth}`);
      for (let i = 1; i <= 3; i++) files[join(folder, `f${i}`)] = randomBytes(depth * 40_000 + i);
      files[join(folder, `side${depth}`, 'x')] = Buffer.from(`side ${depth}\n`);
    }
    await writeTree(join(work, 'tree'), files);
    await mkdir(join(work, 'tree', 'empty-folder'));

    const r = must(
      await run('ruby', [CLIENT, String(gw.port), 'alice', gw.keyFile, work], { timeoutMs: 120_000 }),
      'ruby net-sftp-client.rb',
    );
    const seen = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(seen).toMatchObject({
      version: 3,
      kex: 'ecdh-sha2-nistp521',
      lines: ['one\n', 'two\n', null],
      stat: { size: 8, mtime: 1_000_000_000, permissions: '100755', file: true },
      readlink: 'renamed.txt',
      missing: 2, // NO_SUCH_FILE
      rmdirNotEmpty: 4, // FAILURE
      entries: ['.', '..', 'link', 'renamed.txt', 'tree', 'up.bin'],
    });
    expect(seen['glob']).toEqual(expect.arrayContaining(['top.txt', 'empty-folder', 'd1/d2/d3/d4/d5/d6/f3', 'd1/side1/x']));
    expect(sha(await readFile(join(work, 'back.bin')))).toBe(sha(data));
    expect(sha(await peer.stored('/rb/up.bin'))).toBe(sha(data));
    expect(await treeDigests(join(work, 'tree-back'))).toEqual(await treeDigests(join(work, 'tree')));
    const deep = 'd1/d2/d3/d4/d5/d6/f2';
    expect(sha(await peer.stored(`/rb/tree/${deep}`))).toBe(sha(files[deep] ?? Buffer.alloc(0)));
  });
});
