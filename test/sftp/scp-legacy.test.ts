import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AbortOptions, IntegrityError } from '../../src/errors.js';
import { LEGACY_SCP_MESSAGE } from '../../src/sftp/index.js';
import { type ChunkAddress, ForwardingChunkStore } from '../../src/store/index.js';
import { type Target, missing, remote, scp, sftpBatch, skipNotice } from '../helpers/openssh.js';
import { startGateway, startQuotaGateway, type Gateway } from './gateway-fixture.js';

/**
 * Legacy scp (`scp -O`; OpenSSH's scp before 9.0, RHEL 8's and Ubuntu
 * 20.04's default) against the gateway, which serves it without a shell as
 * SFTP requests (src/sftp/scp): OpenSSH's real client both ways, and a raw
 * client for what no real one sends.
 */
const noScp = skipNotice(missing('scp', 'sftp', 'ssh-keygen'), 'legacy scp tests');

let gw: Gateway;
let work: string;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const legacy = (t: Target, args: string[], timeoutMs?: number) => scp(t, ['-O', ...args], timeoutMs);

/** The bytes stored at `path`, fetched with OpenSSH's sftp (not with scp, which is under test). */
async function stored(path: string, t: Target = gw.alice): Promise<Buffer> {
  const local = join(work, `stored-${randomBytes(6).toString('hex')}`);
  const r = await sftpBatch(t, work, [`get "${path}" ${local}`]);
  if (r.code !== 0) throw new Error(`sftp get ${path}: ${r.stderr}`);
  return readFile(local);
}

async function exists(path: string, t: Target = gw.alice): Promise<boolean> {
  return (await sftpBatch(t, work, [`ls "${path}"`])).code === 0;
}

beforeAll(async () => {
  if (noScp !== undefined) return;
  gw = await startGateway({ chunkSize: 4096 });
  work = await mkdtemp(join(tmpdir(), 'capstan-scp-legacy-'));
});
afterAll(async () => {
  await gw?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe.skipIf(noScp)('legacy scp (OpenSSH scp -O)', () => {
  it('copies files and a tree both ways byte-identical, with execute bits, and times with -p', async () => {
    const src = join(work, 'up');
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
    const files: Record<string, Buffer> = {
      'big.bin': randomBytes(3 * 4096 * 40 + 17),
      empty: Buffer.alloc(0),
      'run.sh': Buffer.from('#!/bin/sh\necho hi\n'),
      'sub/deeper/x.txt': Buffer.from('x\n'),
    };
    for (const [name, content] of Object.entries(files)) await writeFile(join(src, name), content);
    await chmod(join(src, 'run.sh'), 0o755);
    const then = new Date('2003-04-05T06:07:08Z');
    await utimes(join(src, 'big.bin'), then, then);

    const up = await legacy(gw.alice, ['-r', '-p', src, remote(gw.alice, '/tree')]);
    expect(up.code, up.stderr).toBe(0);
    for (const [name, content] of Object.entries(files)) expect(sha(await stored(`/tree/${name}`))).toBe(sha(content));
    const listed = await sftpBatch(gw.alice, work, ['ls -l /tree']);
    expect(listed.stdout).toMatch(/^-rwxr-xr-x .* run\.sh$/m);
    expect(listed.stdout).toMatch(/^-rw-r--r-- .* Apr {2}5 {2}2003 big\.bin$/m);

    // Two files into a directory (the client sends -d), then the tree back with -p.
    const one = await legacy(gw.alice, [join(src, 'empty'), join(src, 'run.sh'), remote(gw.alice, '/tree/sub')]);
    expect(one.code, one.stderr).toBe(0);
    expect(await exists('/tree/sub/run.sh')).toBe(true);
    const down = await legacy(gw.alice, ['-r', '-p', remote(gw.alice, '/tree'), join(work, 'down')]);
    expect(down.code, down.stderr).toBe(0);
    for (const [name, content] of Object.entries(files)) expect(sha(await readFile(join(work, 'down', name)))).toBe(sha(content));
    expect((await stat(join(work, 'down', 'run.sh'))).mode & 0o111).toBe(0o111);
    expect((await stat(join(work, 'down', 'big.bin'))).mtime.getTime()).toBe(then.getTime());
  });

  it('expands globs, a leading ~ and quoted names on its side, as the shell behind a real scp would', async () => {
    const names = ['a 1.txt', 'b.txt', 'c.log', '.hidden.txt', 'q[1].txt'];
    for (const name of names) await writeFile(join(work, name), name);
    const up = await legacy(gw.alice, [...names.map((n) => join(work, n)), remote(gw.alice, '/glob/')], 60_000);
    // The target directory does not exist yet: -d makes that an error, as from OpenSSH's scp.
    expect(up.code).not.toBe(0);
    expect(up.stderr).toMatch(/Not a directory|No such file/);
    expect((await sftpBatch(gw.alice, work, ['mkdir /glob'])).code).toBe(0);
    expect((await legacy(gw.alice, [...names.map((n) => join(work, n)), remote(gw.alice, '/glob/')])).code).toBe(0);

    const into = async (dir: string, path: string) => {
      await rm(join(work, dir), { recursive: true, force: true });
      await mkdir(join(work, dir));
      const r = await legacy(gw.alice, [remote(gw.alice, path), join(work, dir)]);
      return { ...r, names: (await import('node:fs/promises')).readdir(join(work, dir)).then((l) => l.sort()) };
    };
    const txt = await into('g1', '/glob/*.txt');
    expect(txt.code, txt.stderr).toBe(0);
    expect(await txt.names).toEqual(['a 1.txt', 'b.txt', 'q[1].txt']); // no hidden file, as sh
    const tilde = await into('g2', '~/glob/?.log');
    expect(await tilde.names).toEqual(['c.log']);
    const escaped = await into('g3', '/glob/a\\ 1.txt');
    expect(await escaped.names).toEqual(['a 1.txt']);
    // Escaped brackets are a name, not a class (OpenSSH's client refuses quotes here: it checks names against the pattern).
    const literal = await into('g4', '/glob/q\\[1\\].txt');
    expect(await literal.names).toEqual(['q[1].txt']);
    const cls = await into('g5', '/glob/[ab]*');
    expect(await cls.names).toEqual(['a 1.txt', 'b.txt']);

    const none = await into('g6', '/glob/*.none');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/\*\.none: No such file or directory/);
    const shell = await into('g7', '/glob/b.txt;ls');
    expect(shell.code).toBe(1);
    expect(shell.stderr).toMatch(/runs no shell/);
  });

  it('-r follows symbolic links, as OpenSSH does, and a link loop ends at the depth bound', async () => {
    await writeFile(join(work, 'in-loop'), 'in the loop');
    const made = await sftpBatch(gw.alice, work, [
      'mkdir /loop',
      'put in-loop /loop/file',
      'ln -s /loop /loop/again',
      'ln -s /loop/file /loop/link',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const r = await legacy(gw.alice, ['-r', remote(gw.alice, '/loop'), join(work, 'loop-back')], 60_000);
    expect(r.code).toBe(1);
    // The gateway bounds the links one path may pass through (ELOOP); MAX_DEPTH bounds plain nesting.
    expect(r.stderr).toMatch(/Too many levels of symbolic links|maximum directory depth exceeded/);
    expect(await readFile(join(work, 'loop-back', 'link'), 'utf8')).toBe('in the loop');
    expect(await readFile(join(work, 'loop-back', 'again', 'again', 'file'), 'utf8')).toBe('in the loop');
  });

  it('a read-only root refuses uploads, an append-only one refuses replacing a file; what was there stays', async () => {
    await writeFile(join(work, 'v1'), 'version one');
    await writeFile(join(work, 'v2'), 'version two, longer');
    expect((await legacy(gw.alice, [join(work, 'v1'), remote(gw.alice, '/kept')])).code).toBe(0);

    const ro = await legacy(gw.reader, [join(work, 'v2'), remote(gw.reader, '/kept')]);
    expect(ro.code).toBe(1);
    expect(ro.stderr).toMatch(/kept: Permission denied/);
    const appendOnly = await legacy(gw.backup, [join(work, 'v2'), remote(gw.backup, '/kept')]);
    expect(appendOnly.code).toBe(1);
    expect(appendOnly.stderr).toMatch(/Permission denied/);
    expect((await stored('/kept')).toString()).toBe('version one');
    // New names are what an append-only account may add.
    const added = await legacy(gw.backup, [join(work, 'v2'), remote(gw.backup, '/added')]);
    expect(added.code, added.stderr).toBe(0);
    expect((await stored('/added')).toString()).toBe('version two, longer');
  });

  it('an upload cut off by a killed client commits nothing: the previous version stays', async () => {
    await writeFile(join(work, 'cut-v1'), 'the first version');
    expect((await legacy(gw.alice, [join(work, 'cut-v1'), remote(gw.alice, '/cut.bin')])).code).toBe(0);
    await writeFile(join(work, 'cut-big'), randomBytes(64 * 1024 * 1024));
    const before = gw.server.stats.bytesIn;
    const child = spawn(
      'scp',
      [
        '-O',
        '-q',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'LogLevel=ERROR',
        '-i',
        gw.keyFile,
        '-P',
        String(gw.port),
        join(work, 'cut-big'),
        `${gw.alice.user}@127.0.0.1:/cut.bin`,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      // Killed once part of the file is in, not all of it.
      await vi.waitFor(() => expect(gw.server.stats.bytesIn - before).toBeGreaterThan(4 * 1024 * 1024), { timeout: 30_000, interval: 5 });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect(gw.server.stats.bytesIn - before).toBeLessThan(64 * 1024 * 1024);
    await vi.waitFor(async () => expect((await stored('/cut.bin')).toString()).toBe('the first version'), { timeout: 10_000 });
  });
});

describe.skipIf(noScp)('legacy scp and quotas', () => {
  let q: Gateway;
  beforeAll(async () => {
    q = await startQuotaGateway('alice bytes=256K\n', { chunkSize: 4096 });
  });
  afterAll(() => q?.close());

  it('an upload past the quota is refused and reported; the previous version stays', async () => {
    await writeFile(join(work, 'q-small'), Buffer.alloc(100 * 1024, 1));
    await writeFile(join(work, 'q-big'), Buffer.alloc(300 * 1024, 2));
    const first = await legacy(q.alice, [join(work, 'q-small'), remote(q.alice, '/quota.bin')]);
    expect(first.code, first.stderr).toBe(0);
    const refused = await legacy(q.alice, [join(work, 'q-big'), remote(q.alice, '/quota.bin')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/quota\.bin: Quota exceeded/);
    expect(sha(await stored('/quota.bin', q.alice))).toBe(sha(Buffer.alloc(100 * 1024, 1)));
    // The transfer goes on after the refusal: a later file in the same command lands.
    await writeFile(join(work, 'q-after'), 'after');
    const mixed = await legacy(q.alice, [join(work, 'q-big'), join(work, 'q-after'), remote(q.alice, '/')]);
    expect(mixed.code).toBe(1);
    expect((await stored('/q-after', q.alice)).toString()).toBe('after');
    expect(await exists('/q-big', q.alice)).toBe(false);
  });
});

/** Fails every chunk read with IntegrityError once armed: a store whose bytes went bad under a download. */
class FailingReads extends ForwardingChunkStore {
  armed = false;
  override get(address: ChunkAddress, options?: AbortOptions): Promise<Uint8Array> {
    if (this.armed) return Promise.reject(new IntegrityError(address.toString(), 'chunk'));
    return this.inner.get(address, options);
  }
}

describe.skipIf(noScp)('legacy scp and a failing store', () => {
  it('a download whose chunks fail to read is reported with exit status 1, and the same file comes whole once they read again', async () => {
    let store: FailingReads | undefined;
    const g = await startGateway({ chunkSize: 4096, wrapChunks: (s) => (store = new FailingReads(s)) });
    try {
      await writeFile(join(work, 'fail-a'), randomBytes(600 * 1024));
      expect((await legacy(g.alice, [join(work, 'fail-a'), remote(g.alice, '/a.bin')])).code).toBe(0);
      if (store !== undefined) store.armed = true;
      const bad = await legacy(g.alice, [remote(g.alice, '/a.bin'), join(work, 'fail-back')]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/a\.bin: Integrity check failed/);
      if (store !== undefined) store.armed = false;
      const good = await legacy(g.alice, [remote(g.alice, '/a.bin'), join(work, 'fail-again')]);
      expect(good.code, good.stderr).toBe(0);
      expect(sha(await readFile(join(work, 'fail-again')))).toBe(sha(await readFile(join(work, 'fail-a'))));
    } finally {
      await g.close();
    }
  });
});

describe.skipIf(noScp)('legacy scp turned off', () => {
  it('is refused both ways with the message, which says how to copy over SFTP', async () => {
    const off = await startGateway({ server: { legacyScp: false } });
    try {
      await writeFile(join(work, 'legacy.bin'), 'legacy');
      const up = await legacy(off.alice, [join(work, 'legacy.bin'), remote(off.alice, '/legacy.bin')]);
      const down = await legacy(off.alice, [remote(off.alice, '/legacy.bin'), join(work, 'legacy.back')]);
      for (const r of [up, down]) {
        expect(r.code).not.toBe(0);
        for (const line of LEGACY_SCP_MESSAGE.trim().split('\n')) expect(r.stderr).toContain(line);
      }
      expect((await sftpBatch(off.alice, work, ['ls /legacy.bin'])).code).not.toBe(0);
    } finally {
      await off.close();
    }
  });
});

/** An exec of `command` by alice with a raw channel: what the test writes is the scp stream. */
async function rawScp(
  command: string,
): Promise<{ channel: ssh2.ClientChannel; output: () => Buffer; done: Promise<number | undefined>; end: () => void }> {
  const client = new ssh2.Client();
  const key = await readFile(gw.keyFile);
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ host: '127.0.0.1', port: gw.port, username: 'alice', privateKey: key });
  });
  const out: Buffer[] = [];
  let code: number | undefined;
  let closed: () => void = () => {};
  const done = new Promise<number | undefined>((resolve) => {
    closed = () => resolve(code);
  });
  // Listeners go on in the exec callback itself: a quick answer's exit status may come in the same read.
  const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', () => {});
      ch.on('exit', (c: number) => {
        code = c;
      });
      ch.on('close', () => {
        client.end();
        closed();
      });
      resolve(ch);
    }),
  );
  return { channel, output: () => Buffer.concat(out), done, end: () => client.end() };
}

describe.skipIf(noScp)('legacy scp: what no real client sends', () => {
  it('refuses bad records with a message, goes on after a refused file, and keeps serving', async () => {
    await writeFile(join(work, 'keep'), 'kept bytes');
    expect((await legacy(gw.alice, [join(work, 'keep'), remote(gw.alice, '/raw-keep')])).code).toBe(0);
    const cases: [string, Buffer, RegExp][] = [
      ['scp -t /', Buffer.from('C0644 3 a/b\nabc\0'), /unexpected filename: a\/b/],
      ['scp -t /', Buffer.from('C0644 3 ..\nabc\0'), /unexpected filename/],
      ['scp -t /', Buffer.from('C06x4 3 x\nabc\0'), /protocol error/],
      ['scp -t /', Buffer.from('D0755 0 dir\nE\n'), /directory without -r/],
      ['scp -t /', Buffer.from('T1 2 3\n'), /protocol error/],
      ['scp -t /', Buffer.from(`C0644 3 ${'n'.repeat(5000)}\n`), /line too long/],
      ['scp -t /', Buffer.from('hello\n'), /hello/],
    ];
    for (const [command, input, message] of cases) {
      const raw = await rawScp(command);
      raw.channel.end(input);
      const code = await raw.done;
      expect(code, input.toString().slice(0, 40)).toBe(1);
      expect(raw.output().toString()).toMatch(message);
    }
    // A file larger than any the store holds is refused before its bytes; the next file still lands.
    const raw = await rawScp('scp -t /');
    raw.channel.write(`C0644 ${2 ** 50} huge\n`);
    await vi.waitFor(() => expect(raw.output().toString()).toMatch(/huge: File too large/));
    raw.channel.end(Buffer.from('C0644 4 next\nnext\0'));
    expect(await raw.done).toBe(1);
    expect((await stored('/next')).toString()).toBe('next');
    expect(await exists('/huge')).toBe(false);

    // A name that is not UTF-8 is refused, not mangled; the next file lands.
    const latin1 = await rawScp('scp -t /');
    latin1.channel.end(Buffer.concat([Buffer.from('C0644 1 caf'), Buffer.of(0xe9), Buffer.from('\nC0644 5 after\nafter\0')]));
    expect(await latin1.done).toBe(1);
    expect(latin1.output().toString()).toMatch(/file name is not UTF-8/);
    expect((await stored('/after')).toString()).toBe('after');
    // A target whose glob matches two names is ambiguous, as under a shell.
    const ambiguous = await rawScp('scp -t /*');
    ambiguous.channel.end();
    expect(await ambiguous.done, ambiguous.output().toString()).toBe(1);
    expect(ambiguous.output().toString()).toMatch(/ambiguous target/);
    expect((await stored('/raw-keep')).toString()).toBe('kept bytes');
  });

  it('an upload whose source reports an error in place of its final 0, or that the channel cuts off, leaves the previous version', async () => {
    await writeFile(join(work, 'prev'), 'previous');
    expect((await legacy(gw.alice, [join(work, 'prev'), remote(gw.alice, '/raw-prev')])).code).toBe(0);
    const reported = await rawScp('scp -t /raw-prev');
    reported.channel.end(Buffer.concat([Buffer.from('C0644 8 raw-prev\nreplaced'), Buffer.from('\x01scp: raw-prev: read error\n')]));
    expect(await reported.done).toBe(1);
    expect((await stored('/raw-prev')).toString()).toBe('previous');

    const cut = await rawScp('scp -t /raw-prev');
    cut.channel.write('C0644 100 raw-prev\nonly part of it');
    await vi.waitFor(() => expect(cut.output().length).toBeGreaterThanOrEqual(2)); // the 0s for the start and for C
    cut.end();
    await cut.done;
    expect((await stored('/raw-prev')).toString()).toBe('previous');
  });
});
