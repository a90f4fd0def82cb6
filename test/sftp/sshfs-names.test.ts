import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedNames, expectRsyncKeepsNames, makeNameTree, NFD, nameBytes } from '../helpers/name-trees.js';
import { fuseUnavailable, missing, mountSshfs, skipNotice } from '../helpers/openssh.js';
import { connectSsh2, sftpOf, startGateway, type Gateway } from './gateway-fixture.js';

/**
 * File names come back exactly as the client created them (docs/spec/
 * directories.md, Names). With names NFC-normalized on the way in, `rsync
 * -a --delete` through sshfs saw a name its source lacked and deleted the
 * file it had just copied; against OpenSSH, and now capstan, the second run
 * changes nothing.
 */
const skip = skipNotice(fuseUnavailable() ?? missing('rsync'), 'rsync-over-sshfs name tests');

let gw: Gateway;
let work: string;

beforeAll(async () => {
  gw = await startGateway({ chunkSize: 64 * 1024 });
  work = await mkdtemp(join(tmpdir(), 'capstan-names-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)('rsync over sshfs keeps every name byte for byte', () => {
  it('NFD, NFC, mixed-normalization and 255-byte names: the second rsync changes nothing, --delete deletes nothing', async () => {
    const src = join(work, 'src');
    await makeNameTree(src);
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const mount = await mountSshfs(gw.alice, mnt);
    try {
      await expectRsyncKeepsNames(src, join(mnt, 'r'));
    } finally {
      await mount.unmount();
    }
    // And through plain SFTP, after the mount is gone: the names as created.
    const client = await connectSsh2(gw.port, 'alice', { privateKey: await readFile(gw.keyFile) });
    try {
      const sftp = await sftpOf(client);
      const dir = `dir ${NFD}`;
      const names = await new Promise<string[]>((resolve, reject) =>
        sftp.readdir(`/r/${dir}`, (err, list) => (err ? reject(err) : resolve(list.map((e) => e.filename)))),
      );
      expect(nameBytes(names)).toEqual(nameBytes(expectedNames(dir)));
    } finally {
      client.end();
    }
  }, 180_000);
});
