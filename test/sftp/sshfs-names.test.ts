import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuseUnavailable, missing, mountSshfs, run, skipNotice } from '../helpers/openssh.js';
import { connectSsh2, sftpOf, startGateway, type Gateway } from './gateway-fixture.js';

/**
 * File names come back exactly as the client created them (docs/spec/
 * directories.md, Names). With names NFC-normalized on the way in, `rsync
 * -a --delete` through sshfs saw a name its source lacked and deleted the
 * file it had just copied; against OpenSSH, and now capstan, the second run
 * changes nothing.
 */
const skip = skipNotice(fuseUnavailable() ?? missing('rsync'), 'rsync-over-sshfs name tests');

const NFD = 'cafe\u0301';
const NFC = 'caf\u00e9';
/** 255 bytes of ASCII, and 255 bytes of NFD (85 × `e` + U+0301, 3 bytes each). */
const LONG_ASCII = 'n'.repeat(251) + '.txt';
const LONG_NFD = 'e\u0301'.repeat(85);

/** Names as their UTF-8 bytes in hex, so an assertion shows what differs. */
const bytesOf = (names: string[]): string[] => names.map((n) => Buffer.from(n, 'utf8').toString('hex')).sort();

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
    const tree: Record<string, string[]> = {
      '': [`${NFD}.txt`, `${NFC}.txt`, LONG_ASCII, LONG_NFD, `mixed ${NFC} ${NFD}.md`],
      [`dir ${NFD}`]: [`${NFC} inside NFD dir`, 'plain'],
      [`dir ${NFC}`]: [`${NFD} inside NFC dir`],
    };
    for (const [dir, files] of Object.entries(tree)) {
      await mkdir(join(src, dir), { recursive: true });
      for (const name of files) await writeFile(join(src, dir, name), randomBytes(100 + name.length));
    }
    const mnt = join(work, 'mnt');
    await mkdir(mnt);
    const mount = await mountSshfs(gw.alice, mnt);
    try {
      const first = await run('rsync', ['-a', `${src}/`, `${mnt}/r/`], { timeoutMs: 120_000 });
      expect(first.code, first.stderr).toBe(0);
      const second = await run('rsync', ['-a', '--delete', '--itemize-changes', `${src}/`, `${mnt}/r/`], { timeoutMs: 120_000 });
      expect(second.code, second.stderr).toBe(0);
      // No deletion and no file sent again: an unchanged tree itemizes nothing.
      expect(second.stdout.split('\n').filter((l) => l !== '')).toEqual([]);
      for (const dir of Object.keys(tree)) {
        expect(bytesOf(await readdir(join(mnt, 'r', dir)))).toEqual(bytesOf([...tree[dir]!, ...Object.keys(tree).filter((d) => d !== '' && dir === '')]));
      }
    } finally {
      await mount.unmount();
    }
    // And through plain SFTP, after the mount is gone: the names as created, the content intact.
    const client = await connectSsh2(gw.port, 'alice', { privateKey: await readFile(gw.keyFile) });
    try {
      const sftp = await sftpOf(client);
      const names = await new Promise<string[]>((resolve, reject) =>
        sftp.readdir(`/r/dir ${NFD}`, (err, list) => (err ? reject(err) : resolve(list.map((e) => e.filename)))),
      );
      expect(bytesOf(names)).toEqual(bytesOf(tree[`dir ${NFD}`]!));
    } finally {
      client.end();
    }
  }, 180_000);
});
