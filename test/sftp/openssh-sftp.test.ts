import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DirectoryCap } from '../../src/cap/index.js';
import { RSYNC_MESSAGE, SFTP_ONLY_MESSAGE } from '../../src/sftp/index.js';
import { missing, remote, run, scp, sftpBatch, skipNotice, ssh, sftpOk } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * OpenSSH's own clients against the gateway: what users actually run.
 * Chunks are 4 KiB here so that chunk-boundary sizes stay small.
 */
const CHUNK = 4096;
const noSftp = skipNotice(missing('sftp', 'ssh', 'ssh-keygen'), 'OpenSSH sftp/ssh tests');
const noScp = skipNotice(missing('scp', 'ssh-keygen'), 'OpenSSH scp tests');
const noSshpass = skipNotice(
  missing('sftp', 'sshpass'),
  'OpenSSH password tests (the ssh2-client password tests in protocol.test.ts still run)',
);

let gw: Gateway;
let work: string;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function local(name: string, content: Buffer | string): Promise<string> {
  await writeFile(join(work, name), content);
  return name;
}

const ok = (commands: string[], target = gw.alice): Promise<string> => sftpOk(target, work, commands);

beforeAll(async () => {
  gw = await startGateway({ chunkSize: CHUNK });
  work = await mkdtemp(join(tmpdir(), 'capstan-openssh-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(noSftp)('OpenSSH sftp', () => {
  it('puts, lists with ls -l, gets back, renames and removes', async () => {
    const content = randomBytes(10_000);
    await local('a.bin', content);
    const out = await ok(['put a.bin', 'ls -l', 'get a.bin a.back', 'mkdir d', 'rename a.bin d/a.bin', 'ls d', 'get d/a.bin a.back2']);
    expect(out).toMatch(/^-rw-r--r-- {4}1 alice {4}alice {7}10000 \w{3} [ \d]\d \d\d:\d\d a\.bin$/m);
    expect(sha(await readFile(join(work, 'a.back')))).toBe(sha(content));
    expect(sha(await readFile(join(work, 'a.back2')))).toBe(sha(content));
    await ok(['rm d/a.bin', 'rmdir d']);
    const gone = await sftpBatch(gw.alice, work, ['ls d']);
    expect(gone.code).not.toBe(0);
  });

  it('refuses rmdir of a non-empty directory, and rename onto an existing name', async () => {
    await local('x', 'x');
    await ok(['mkdir full', 'put x full/x', 'put x y']);
    const r = await sftpBatch(gw.alice, work, ['rmdir full']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Failure/);
    // -l: the v3 RENAME; plain `rename` uses posix-rename@openssh.com, which overwrites
    const r2 = await sftpBatch(gw.alice, work, ['rename -l y full/x']);
    expect(r2.code).not.toBe(0);
    await ok(['rm full/x', 'rmdir full', 'rm y']);
  });

  it('chmod 444 makes a file read-only (put over it is refused) until chmod 644', async () => {
    await local('ro.txt', 'first');
    await local('ro2.txt', 'second');
    const out = await ok(['put ro.txt', 'chmod 444 ro.txt', 'ls -l ro.txt']);
    expect(out).toMatch(/^-r--r--r-- .* ro\.txt$/m);
    const r = await sftpBatch(gw.alice, work, ['put ro2.txt ro.txt']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
    const r2 = await sftpBatch(gw.alice, work, ['rm ro.txt']);
    expect(r2.code).not.toBe(0);
    await ok(['get ro.txt ro.back', 'chmod 644 ro.txt', 'put ro2.txt ro.txt', 'get ro.txt ro.back2']);
    expect(await readFile(join(work, 'ro.back'), 'utf8')).toBe('first');
    expect(await readFile(join(work, 'ro.back2'), 'utf8')).toBe('second');
  });

  it('put -p preserves the modification time (ls -l shows it)', async () => {
    await local('old.txt', 'from long ago');
    const t = new Date('2001-02-03T12:05:06Z');
    await utimes(join(work, 'old.txt'), t, t);
    const out = await ok(['put -p old.txt', 'ls -l old.txt', 'get -p old.txt old.back']);
    expect(out).toMatch(/ Feb {2}3 {2}2001 old\.txt$/m);
    expect((await stat(join(work, 'old.back'))).mtimeMs).toBe(t.getTime());
  });

  it('reput and reget resume interrupted transfers', async () => {
    const whole = randomBytes(5 * CHUNK + 123);
    await local('whole.bin', whole);
    await local('part.bin', whole.subarray(0, 2 * CHUNK + 7));
    await ok(['put part.bin whole.bin', 'reput whole.bin whole.bin', 'get whole.bin whole.back']);
    expect(sha(await readFile(join(work, 'whole.back')))).toBe(sha(whole));
    await truncate(join(work, 'whole.back'), 3 * CHUNK - 1);
    await ok(['reget whole.bin whole.back']);
    expect(sha(await readFile(join(work, 'whole.back')))).toBe(sha(whole));
  });

  it('df reports through statvfs@openssh.com', async () => {
    const out = await ok(['df /', 'df -i /']);
    expect(out).toMatch(/Size\s+Used\s+Avail/);
    expect(out).toMatch(/Inodes\s+Used\s+Avail/);
  });

  it('ln makes a hard link (hardlink@openssh.com); ln -s makes a symbolic link (symlink-openssh.test.ts)', async () => {
    const content = randomBytes(3 * CHUNK);
    await local('orig.bin', content);
    await ok(['put orig.bin', 'ln orig.bin linked.bin', 'rm orig.bin', 'get linked.bin linked.back']);
    expect(sha(await readFile(join(work, 'linked.back')))).toBe(sha(content));
    await ok(['ln -s linked.bin sym.bin', 'get sym.bin sym.back', 'rm sym.bin']);
    expect(sha(await readFile(join(work, 'sym.back')))).toBe(sha(content));
  });

  it('cp copies on the server (copy-data): byte-identical, the source unchanged, the same immutable file', async () => {
    const content = randomBytes(5 * CHUNK + 17);
    await local('cp-src.bin', content);
    await ok(['mkdir cpdir', 'put cp-src.bin', 'cp cp-src.bin cpdir/copy.bin', 'get cpdir/copy.bin cp.back', 'get cp-src.bin cp-src.back']);
    expect(sha(await readFile(join(work, 'cp.back')))).toBe(sha(content));
    expect(sha(await readFile(join(work, 'cp-src.back')))).toBe(sha(content));
    const root = gw.tree.directory(gw.root);
    const dir = gw.tree.directory((await gw.tree.resolve(gw.root, ['cpdir'])).cap as DirectoryCap);
    expect((await dir.lookup('copy.bin'))?.cap.toString()).toBe((await root.lookup('cp-src.bin'))?.cap.toString());
    // The same cap would come from a real copy too (convergent encryption): the gateway says which it was.
    expect(gw.logs.filter((l) => l.event === 'copy-data').map((l) => [l.relinked, l.bytes])).toEqual([[true, content.length]]);
    // Over an existing file, and of an empty file; a directory is refused by the client (not a regular file).
    await local('cp-empty', '');
    await ok(['put cp-empty', 'cp cp-empty cpdir/copy.bin', 'get cpdir/copy.bin cp-empty.back']);
    expect((await readFile(join(work, 'cp-empty.back'))).length).toBe(0);
    const r = await sftpBatch(gw.alice, work, ['cp cpdir cpdir2']);
    expect(r.code).not.toBe(0);
    const missingSource = await sftpBatch(gw.alice, work, ['cp nothing-here.bin x.bin']);
    expect(missingSource.code).not.toBe(0);
    expect(missingSource.stderr).toMatch(/No such file/);
  });

  it('round-trips sizes around the literal and chunk boundaries', async () => {
    const sizes = [0, 1, 63, 64, 65, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK];
    const contents = new Map(sizes.map((n) => [n, randomBytes(n)]));
    for (const [n, c] of contents) await local(`s${n}`, c);
    const out = await ok([
      'mkdir sizes',
      ...sizes.map((n) => `put s${n} sizes/s${n}`),
      'ls -l sizes',
      ...sizes.map((n) => `get sizes/s${n} s${n}.back`),
    ]);
    for (const [n, c] of contents) {
      expect(out).toMatch(new RegExp(` ${n} \\w{3} .* s${n}$`, 'm'));
      expect(sha(await readFile(join(work, `s${n}.back`)))).toBe(sha(c));
    }
  });

  it('keeps non-ASCII names byte for byte: an NFD name comes back NFD, beside its NFC twin', async () => {
    const nfd = 'cafe\u0301.txt';
    const nfc = 'caf\u00e9.txt';
    await local('plain.txt', 'ünïcödé');
    await local(nfd, 'decomposed');
    await local(nfc, 'composed');
    const out = await ok([
      'put plain.txt "日本語 ファイル ✓.txt"',
      `put "${nfd}"`,
      `put "${nfc}"`,
      'ls -1',
      'get "日本語 ファイル ✓.txt" u.back',
      `get "${nfd}" nfd.back`,
      `get "${nfc}" nfc.back`,
    ]);
    expect(out).toContain('日本語 ファイル ✓.txt');
    const listed = out.split('\n').filter((line) => line.normalize('NFC').includes(nfc));
    expect(
      listed
        .map((l) => l.trim())
        .filter((l) => !l.startsWith('sftp>'))
        .sort(),
    ).toEqual([nfc, nfd].sort());
    expect(await readFile(join(work, 'u.back'), 'utf8')).toBe('ünïcödé');
    expect(await readFile(join(work, 'nfd.back'), 'utf8')).toBe('decomposed');
    expect(await readFile(join(work, 'nfc.back'), 'utf8')).toBe('composed');
  });

  it('opens any cap under /uri/CAP; a read cap there is read-only', async () => {
    await local('via-uri.txt', 'through the cap');
    await ok([`put via-uri.txt /uri/${gw.root.toString()}/via-uri.txt`, 'get via-uri.txt via.back']);
    expect(await readFile(join(work, 'via.back'), 'utf8')).toBe('through the cap');
    const ro = `/uri/${gw.root.readonly().toString()}`;
    const out = await ok([`ls ${ro}`, `get ${ro}/via-uri.txt via.back2`]);
    expect(out).toContain('via-uri.txt');
    const r = await sftpBatch(gw.alice, work, [`put via-uri.txt ${ro}/nope.txt`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
  });

  it('a read-cap root refuses every write with permission denied', async () => {
    await local('w.txt', 'w');
    await ok(['put w.txt existing.txt', 'mkdir existing-dir']);
    const attempts = [
      'put w.txt new.txt',
      'put w.txt existing.txt',
      'mkdir nd',
      'rmdir existing-dir',
      'rm existing.txt',
      'rename existing.txt moved.txt',
      'chmod 444 existing.txt',
      'ln existing.txt l.txt',
    ];
    for (const cmd of attempts) {
      const r = await sftpBatch(gw.reader, work, [cmd]);
      expect(r.code, cmd).not.toBe(0);
      expect(r.stderr, cmd).toMatch(/Permission denied/);
    }
    const out = await ok(['ls -l', 'get existing.txt r.back'], gw.reader);
    expect(out).toMatch(/^-r--r--r-- .* existing\.txt$/m);
    expect(out).toMatch(/^dr-xr-xr-x .* existing-dir$/m);
  });
});

describe.skipIf(noSftp)('OpenSSH ssh: only sftp is served', () => {
  it('refuses exec with the message on stderr and exit status 1', async () => {
    const r = await ssh(gw.alice, ['ls', '/']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(SFTP_ONLY_MESSAGE);
  });

  it.skipIf(missing('rsync'))('tells rsync, which execs `rsync --server` there, how to reach the gateway instead', async () => {
    await local('rs.txt', 'rsync');
    const transport = `ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -i ${gw.keyFile} -p ${gw.port}`;
    const r = await run('rsync', ['-e', transport, join(work, 'rs.txt'), `${gw.alice.user}@127.0.0.1:/rs.txt`], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    for (const line of RSYNC_MESSAGE.trim().split('\n')) expect(r.stderr).toContain(line);
    expect((await sftpBatch(gw.alice, work, ['ls /rs.txt'])).code).not.toBe(0);
  });

  it('refuses a shell (with a pty request) the same way', async () => {
    const r = await ssh(gw.alice, [], ['-tt']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(SFTP_ONLY_MESSAGE.trim());
  });

  it('refuses remote port forwarding', async () => {
    const r = await ssh(gw.alice, [], ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '0:127.0.0.1:9']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/remote port forwarding failed/);
  });
});

describe.skipIf(noScp)('OpenSSH scp', () => {
  it('modern scp (over SFTP) copies both ways', async () => {
    const content = randomBytes(2 * CHUNK + 5);
    await local('scp.bin', content);
    const up = await scp(gw.alice, [join(work, 'scp.bin'), remote(gw.alice, '/scp.bin')]);
    expect(up.code, up.stderr).toBe(0);
    const down = await scp(gw.alice, [remote(gw.alice, '/scp.bin'), join(work, 'scp.back')]);
    expect(down.code, down.stderr).toBe(0);
    expect(sha(await readFile(join(work, 'scp.back')))).toBe(sha(content));
  });

  it("`~/` and `~user/` name the account's root; another user's `~` names nothing", async () => {
    const content = randomBytes(CHUNK + 3);
    await local('tilde.bin', content);
    const up = await scp(gw.alice, [join(work, 'tilde.bin'), remote(gw.alice, `~${gw.alice.user}/tilde.bin`)]);
    expect(up.code, up.stderr).toBe(0);
    const down = await scp(gw.alice, [remote(gw.alice, '~/tilde.bin'), join(work, 'tilde.back')]);
    expect(down.code, down.stderr).toBe(0);
    expect(sha(await readFile(join(work, 'tilde.back')))).toBe(sha(content));
    // Stored at /tilde.bin, as sftp reads it back.
    expect((await sftpBatch(gw.alice, work, ['get /tilde.bin tilde.again'])).code).toBe(0);
    expect(sha(await readFile(join(work, 'tilde.again')))).toBe(sha(content));
    const other = await scp(gw.alice, [remote(gw.alice, '~bob/tilde.bin'), join(work, 'tilde.bob')]);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/no such user/i);
  });
  // Legacy scp (-O): scp-legacy.test.ts.
});

describe.skipIf(noSshpass)('OpenSSH sftp with a password (sshpass)', () => {
  it('logs in with the right password', async () => {
    await local('pw.txt', 'password login');
    await ok(['put pw.txt', 'get pw.txt pw.back'], gw.alicePassword);
    expect(await readFile(join(work, 'pw.back'), 'utf8')).toBe('password login');
  });

  it('refuses a wrong password and an unknown user alike, and logs each for fail2ban', async () => {
    const before = gw.logs.filter((l) => l.event === 'auth_failed').length;
    const wrong = await sftpBatch({ ...gw.alicePassword, password: 'wrong' }, work, ['ls']);
    const unknown = await sftpBatch({ ...gw.alicePassword, user: 'mallory' }, work, ['ls']);
    expect(wrong.code).not.toBe(0);
    expect(unknown.code).toBe(wrong.code);
    const failures = gw.logs.filter((l) => l.event === 'auth_failed').slice(before);
    expect(failures.map((l) => l.user)).toEqual(expect.arrayContaining(['alice', 'mallory']));
    for (const l of failures) {
      expect(Object.keys(l).filter((k) => !['level', 'time', 'service', 'component', 'conn'].includes(k))).toEqual([
        'event',
        'remoteAddress',
        'remotePort',
        'user',
        'method',
        'reason',
        'msg',
      ]);
      expect(l.method).toBe('password');
      // The operator learns why; the client learned nothing more than "denied" either way.
      expect(l.reason).toBe(l.user === 'alice' ? 'wrong password' : 'unknown user');
      expect(l.msg).toBe('authentication failed');
    }
    expect(JSON.stringify(gw.logs)).not.toContain('wrong"');
    expect(JSON.stringify(gw.logs)).not.toContain(gw.password);
  });
});

describe.skipIf(noSftp)('logs', () => {
  it('record logins and disconnects with byte counts, and never a cap or a password', async () => {
    await ok(['ls']);
    const text = JSON.stringify(gw.logs);
    expect(text).not.toContain(gw.root.toString().split(':')[2]);
    expect(text).not.toContain(gw.root.readonly().toString().split(':')[2]);
    expect(text).not.toContain(gw.password);
    const login = gw.logs.find((l) => l.event === 'login' && l.method === 'publickey');
    expect(login).toMatchObject({ remoteAddress: '127.0.0.1', user: 'alice' });
    expect(login!.keyFingerprint).toMatch(/^SHA256:/);
    const disconnect = gw.logs.find((l) => l.event === 'disconnect' && l.user === 'alice');
    expect(disconnect!.bytesIn as number).toBeGreaterThan(0);
    expect(disconnect!.bytesOut as number).toBeGreaterThan(0);
    expect(gw.server.stats.loginsOk).toBeGreaterThan(0);
    expect(gw.server.stats.uploadsCommitted).toBeGreaterThan(0);
    expect(gw.server.stats.bytesIn).toBeGreaterThan(0);
  });
});
