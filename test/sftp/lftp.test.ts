import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, type RunResult, type Target } from '../helpers/openssh.js';
import type { Gateway } from './gateway-fixture.js';
import { sha256Hex as sha, startPeerGateway, treeDigests, writeTree, type PeerGateway } from '../helpers/peer-gateway.js';

/**
 * lftp (Debian's package), whose sftp:// runs `ssh -s sftp` under it and
 * speaks SFTP itself: mirror both ways, resumed puts and gets (put -c,
 * get -c), segmented downloads (pget -n), moves and recursive removal. What
 * it stored is read back through OpenSSH's sftp or lftp's own mirror.
 */
const PEERS = ['lftp', 'ssh', 'sftp', 'ssh-keygen'];
const SUITE = 'lftp against a gateway';
const skip = peersOrSkip(SUITE, ...PEERS);

let peer: PeerGateway;
let gw: Gateway;
let work: string;
const stored = (path: string): Promise<Buffer> => peer.stored(path);
const SSH = '-a -x -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR';

/** Runs lftp commands on the account, logged in with the key or, for `alicePassword`, a password lftp types itself. */
async function lftp(t: Target, commands: string[]): Promise<RunResult> {
  const script = join(work, `lftp-${randomBytes(6).toString('hex')}.txt`);
  const connect =
    t.keyFile !== undefined
      ? [
          `set sftp:connect-program "ssh ${SSH} -o BatchMode=yes -o IdentitiesOnly=yes -i ${t.keyFile}"`,
          `open -u ${t.user}, -p ${t.port} sftp://127.0.0.1`,
        ]
      : [
          `set sftp:connect-program "ssh ${SSH} -o PubkeyAuthentication=no"`,
          `open -u "${t.user},${t.password}" -p ${t.port} sftp://127.0.0.1`,
        ];
  const settings = [
    'set sftp:auto-confirm yes',
    'set net:max-retries 1',
    'set net:timeout 30',
    'set xfer:clobber on',
    'set cmd:fail-exit yes',
  ];
  await writeFile(script, [...settings, ...connect, ...commands].join('\n') + '\n');
  return run('lftp', ['-f', script], { cwd: work, env: { HOME: work }, timeoutMs: 180_000 });
}

beforeAll(async () => {
  if (skip !== undefined) return;
  requirePeers(...PEERS);
  peer = await startPeerGateway('capstan-lftp-');
  ({ gw, work } = peer);
});
afterAll(() => peer?.close());

describe.skipIf(skip)(SUITE, () => {
  it('mirror -R --parallel uploads a tree over several connections, mirror brings it back byte-identical; a second mirror -R finds nothing to do', async () => {
    const src = join(work, 'src');
    const files: Record<string, Buffer> = {
      'big.bin': randomBytes(1_200_000),
      empty: Buffer.alloc(0),
      'with space.txt': Buffer.from('spaces\n'),
      'a/b/deep.bin': randomBytes(70_000),
      'a/ünïcode.txt': Buffer.from('names as bytes\n'),
      // Many files in one folder: --parallel uploads them over several connections at once.
      ...Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`many/f${i}.bin`, randomBytes(1000 * i)])),
    };
    await writeTree(src, files);
    await mkdir(join(src, 'empty-dir'));
    must(await lftp(gw.alice, ['mirror -R --parallel=4 src /lf/tree']), 'lftp mirror -R');
    must(await lftp(gw.alice, ['mirror --parallel=4 /lf/tree back']), 'lftp mirror');
    expect(await treeDigests(join(work, 'back'))).toEqual(await treeDigests(src));
    expect((await stat(join(work, 'back', 'empty-dir'))).isDirectory()).toBe(true);
    expect(sha(await stored('/lf/tree/a/b/deep.bin'))).toBe(sha(files['a/b/deep.bin']!));

    // Sizes and times came back as lftp set them, so nothing differs: no upload, no removal (-v prints each).
    const again = must(await lftp(gw.alice, ['mirror -R -v --delete src /lf/tree']), 'lftp mirror -R again');
    expect(again.stdout.trim()).toBe('');
  });

  it('put -c and get -c resume where a transfer stopped; pget -n 4 downloads in segments', async () => {
    const data = randomBytes(2_000_000);
    await writeFile(join(work, 'whole.bin'), data);
    await writeFile(join(work, 'part.bin'), data.subarray(0, 700_000));
    must(
      await lftp(gw.alice, ['mkdir -p /lf/resume', 'put part.bin -o /lf/resume/r.bin', 'put -c whole.bin -o /lf/resume/r.bin']),
      'lftp put -c',
    );
    expect(sha(await stored('/lf/resume/r.bin'))).toBe(sha(data));

    await writeFile(join(work, 'got.bin'), data.subarray(0, 300_000));
    must(await lftp(gw.alice, ['get -c /lf/resume/r.bin -o got.bin', 'pget -n 4 /lf/resume/r.bin -o segmented.bin']), 'lftp get -c, pget');
    expect(sha(await readFile(join(work, 'got.bin')))).toBe(sha(data));
    expect(sha(await readFile(join(work, 'segmented.bin')))).toBe(sha(data));
  });

  it('mv, rm -r and a password login', async () => {
    await writeFile(join(work, 'moved.txt'), 'moved\n');
    must(
      await lftp(gw.alice, [
        'mkdir -p /lf/gone/sub',
        'put moved.txt -o /lf/gone/sub/x.txt',
        'put moved.txt -o /lf/m1.txt',
        'mv /lf/m1.txt /lf/m2.txt',
        'rm -r /lf/gone',
      ]),
      'lftp mv, rm -r',
    );
    const listed = must(await lftp(gw.alicePassword, ['cls -1 /lf/']), 'lftp with a password');
    expect(listed.stdout.split('\n').filter(Boolean).sort()).toEqual(['/lf/m2.txt', '/lf/resume/', '/lf/tree/']);
    expect((await stored('/lf/m2.txt')).toString()).toBe('moved\n');
  });
});
