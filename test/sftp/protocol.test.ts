import { readFile } from 'node:fs/promises';
import type { Client, SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXTENSIONS, LIMITS, SFTP_ONLY_MESSAGE } from '../../src/sftp/index.js';
import { connectSsh2, Ssh2Sessions, startGateway, type Gateway } from './gateway-fixture.js';
import { RawSftp, readString, status, str, u32, u64 } from './raw-sftp.js';
import { call, statusOf } from '../helpers/callback.js';

/**
 * The protocol as ssh2's client and raw packets see it: what the extensions
 * advertise and answer, malformed input, and how the session behaves when
 * the client misbehaves. OpenSSH-driven behaviour is in openssh-sftp.test.ts.
 */
const STATUS = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, OP_UNSUPPORTED: 8 };

let gw: Gateway;
let key: Buffer;
const sessions = new Ssh2Sessions();

const login = (user = 'alice'): Promise<{ client: Client; sftp: SFTPWrapper }> => sessions.open(gw.port, user, { privateKey: key });

beforeAll(async () => {
  gw = await startGateway({ chunkSize: 4096 });
  key = await readFile(gw.keyFile);
});
afterAll(async () => {
  sessions.endAll();
  await gw?.close();
});

describe('VERSION and extensions', () => {
  it('advertises the OpenSSH extensions (ssh2 client sees them in _extensions)', async () => {
    const { sftp } = await login();
    const exts = (sftp as unknown as { _extensions: Record<string, string> })._extensions;
    for (const [name, version] of EXTENSIONS) expect(exts[name]).toBe(version);
  });

  it('answers limits@openssh.com and statvfs@openssh.com with EXTENDED_REPLY', async () => {
    const { client } = await login();
    const raw = await RawSftp.open(client);
    await raw.init();
    raw.send(200, u32(7), str('limits@openssh.com'));
    const limits = (await raw.next())!;
    expect(limits.type).toBe(201);
    expect(limits.payload.readUInt32BE(0)).toBe(7);
    expect(Number(limits.payload.readBigUInt64BE(4))).toBe(LIMITS.maxPacketLength);
    expect(Number(limits.payload.readBigUInt64BE(12))).toBe(LIMITS.maxReadLength);
    expect(Number(limits.payload.readBigUInt64BE(20))).toBe(LIMITS.maxWriteLength);
    expect(Number(limits.payload.readBigUInt64BE(28))).toBe(LIMITS.maxOpenHandles);
    raw.send(200, u32(8), str('statvfs@openssh.com'), str('/'));
    const vfs = (await raw.next())!;
    expect(vfs.type).toBe(201);
    expect(vfs.payload.length).toBe(4 + 11 * 8);
    expect(Number(vfs.payload.readBigUInt64BE(4))).toBe(4096);
    raw.send(200, u32(9), str('statvfs@openssh.com'), str('/missing'));
    expect(status((await raw.next())!).code).toBe(STATUS.NO_SUCH_FILE);
    raw.send(200, u32(10), str('no-such-extension@example.com'));
    expect(status((await raw.next())!).code).toBe(STATUS.OP_UNSUPPORTED);
    raw.send(200, u32(11), str('posix-rename@openssh.com'), str('/only-one-arg'));
    expect(status((await raw.next())!)).toMatchObject({ id: 11, code: STATUS.BAD_MESSAGE });
  });
});

describe('home and `~` (expand-path@openssh.com, home-directory)', () => {
  /** The one name of a NAME reply to request `id`. */
  const oneName = async (raw: RawSftp, id: number): Promise<string> => {
    const p = (await raw.next())!;
    expect(p.type, p.type === 101 ? status(p).message : '').toBe(104);
    expect(p.payload.readUInt32BE(0)).toBe(id);
    expect(p.payload.readUInt32BE(4)).toBe(1);
    return readString(p.payload, 8)[0].toString();
  };

  it('expands `~`, `~/path` and `~own-user/path` to the root, canonical; other paths as REALPATH', async () => {
    const { client, sftp } = await login();
    await call((cb) => sftp.mkdir('/home-test', cb));
    const raw = await RawSftp.open(client);
    await raw.init();
    const cases: [string, string][] = [
      ['~', '/'],
      ['', '/'],
      ['~/', '/'],
      ['~/home-test/../home-test/./x', '/home-test/x'],
      ['~alice', '/'],
      ['~alice/home-test', '/home-test'],
      ['home-test', '/home-test'],
      ['/a/~/b', '/a/~/b'],
    ];
    let id = 20;
    for (const [path, expected] of cases) {
      raw.send(200, u32(++id), str('expand-path@openssh.com'), str(path));
      expect(await oneName(raw, id), path).toBe(expected);
    }
  });

  it("another user's `~` is NO_SUCH_FILE whether or not the account exists; a malformed request is BAD_MESSAGE", async () => {
    const { client } = await login();
    const raw = await RawSftp.open(client);
    await raw.init();
    for (const [id, path] of [
      [1, '~reader'], // an account of this gateway
      [2, '~nobody-at-all/x'],
    ] as const) {
      raw.send(200, u32(id), str('expand-path@openssh.com'), str(path));
      expect(status((await raw.next())!)).toMatchObject({ id, code: STATUS.NO_SUCH_FILE, message: 'no such user' });
    }
    raw.send(200, u32(3), str('expand-path@openssh.com'));
    expect(status((await raw.next())!)).toMatchObject({ id: 3, code: STATUS.BAD_MESSAGE });
    raw.send(200, u32(4), str('home-directory'), str('alice'));
    expect(await oneName(raw, 4)).toBe('/');
    raw.send(200, u32(5), str('home-directory'), str('reader'));
    expect(status((await raw.next())!)).toMatchObject({ id: 5, code: STATUS.NO_SUCH_FILE });
    raw.send(200, u32(6), str('home-directory'), str('alice'), str('extra'));
    expect(status((await raw.next())!)).toMatchObject({ id: 6, code: STATUS.BAD_MESSAGE });
  });
});

describe('malformed input', () => {
  it('a name that is not valid UTF-8 is NO_SUCH_FILE', async () => {
    const { client } = await login();
    const raw = await RawSftp.open(client);
    await raw.init();
    raw.send(17, u32(1), str(Buffer.from([0x2f, 0xff, 0xfe, 0x41])));
    expect(status((await raw.next())!)).toMatchObject({ id: 1, code: STATUS.NO_SUCH_FILE });
    raw.send(3, u32(2), str(Buffer.from([0x2f, 0xc3, 0x28])), u32(0x1a), u32(0));
    expect(status((await raw.next())!)).toMatchObject({ id: 2, code: STATUS.NO_SUCH_FILE });
  });

  it('an unknown type is OP_UNSUPPORTED, a malformed request BAD_MESSAGE, a bad length ends the session; the server keeps serving', async () => {
    const cases: [(raw: RawSftp) => void, number | 'closed'][] = [
      [(raw) => raw.send(99, u32(1)), STATUS.OP_UNSUPPORTED], // unknown type (OpenSSH answers the same)
      [(raw) => raw.send(5, u32(1), u32(200)), STATUS.BAD_MESSAGE], // READ whose handle runs past the end
      [(raw) => raw.sendBytes(Buffer.from([0xff, 0xff, 0xff, 0xff, 1])), 'closed'], // length beyond 256 KiB
      [(raw) => raw.send(6, u32(1), str(Buffer.alloc(4)), u64(0)), STATUS.BAD_MESSAGE], // WRITE without data
      [(raw) => raw.send(17, u32(1), str('/'), u32(0)), STATUS.BAD_MESSAGE], // STAT with trailing bytes
      [(raw) => raw.send(1, u32(3)), 'closed'], // a second INIT
      [(raw) => raw.send(4, Buffer.from([0, 0])), 'closed'], // no room for a request id: nobody to answer
    ];
    for (const [bad, expected] of cases) {
      const client = await connectSsh2(gw.port, 'alice', { privateKey: key });
      client.on('error', () => {});
      try {
        const raw = await RawSftp.open(client);
        await raw.init();
        bad(raw);
        const reply = await Promise.race([raw.closed.then(() => 'closed'), raw.next().then((p) => (p ? status(p).code : 'closed'))]);
        expect(reply).toBe(expected);
        if (expected !== 'closed') {
          // The same session goes on.
          raw.send(16, u32(7), str('/x/..'));
          expect((await raw.next())?.type).toBe(104);
        }
      } finally {
        client.end();
      }
      const { sftp } = await login();
      expect((await call<{ mode: number }>((cb) => sftp.stat('/', cb))).mode & 0o040000).toBeTruthy();
    }
  });

  it('WRITE takes its declared data and ignores bytes after it, as sftp-server does (the Go client of rclone and restic sends them)', async () => {
    const { client, sftp } = await login();
    const raw = await RawSftp.open(client);
    await raw.init();
    // OPEN /trailing.bin for WRITE|CREAT|TRUNC; the HANDLE reply carries the handle string.
    raw.send(3, u32(1), str('/trailing.bin'), u32(0x1a), u32(0));
    const opened = (await raw.next())!;
    expect(opened.type).toBe(102);
    const handle = opened.payload.subarray(8, 8 + opened.payload.readUInt32BE(4));
    raw.send(6, u32(2), str(handle), u64(0), str('declared'), Buffer.from('the rest of a reused buffer'));
    expect(status((await raw.next())!)).toMatchObject({ id: 2, code: STATUS.OK });
    raw.send(4, u32(3), str(handle));
    expect(status((await raw.next())!)).toMatchObject({ id: 3, code: STATUS.OK });
    const back = await call<Buffer>((cb) => sftp.readFile('/trailing.bin', cb));
    expect(back.toString()).toBe('declared');
  });

  it('an invalid handle is FAILURE, and `..` never climbs above /', async () => {
    const { sftp } = await login();
    expect(await statusOf(call((cb) => sftp.fstat(Buffer.from([0, 0, 0, 99]), cb)))).toBe(STATUS.FAILURE);
    expect(await call<string>((cb) => sftp.realpath('.', cb))).toBe('/');
    expect(await call<string>((cb) => sftp.realpath('/a/../../b/./c//d', cb))).toBe('/b/c/d');
    const rootAttrs = await call<{ mode: number }>((cb) => sftp.stat('/../../..', cb));
    expect(rootAttrs.mode & 0o170000).toBe(0o040000);
  });
});

describe('open flags and handles', () => {
  it('EXCL fails on an existing file, no CREAT fails on a missing one, APPEND appends', async () => {
    const { sftp } = await login();
    await call((cb) => sftp.writeFile('/flags.txt', 'one', cb));
    expect(await statusOf(call((cb) => sftp.open('/flags.txt', 'wx', cb)))).toBe(STATUS.FAILURE);
    expect(await statusOf(call((cb) => sftp.open('/missing.txt', 'r+', cb)))).toBe(STATUS.NO_SUCH_FILE);
    await call((cb) => sftp.appendFile('/flags.txt', '-two', cb));
    expect((await call<Buffer>((cb) => sftp.readFile('/flags.txt', cb))).toString()).toBe('one-two');
  });

  it('reads back through a read-write handle what it wrote out of order', async () => {
    const { sftp } = await login();
    const h = await call<Buffer>((cb) => sftp.open('/rw.bin', 'w+', cb));
    await call((cb) => sftp.write(h, Buffer.from('world'), 0, 5, 6, cb));
    await call((cb) => sftp.write(h, Buffer.from('hello '), 0, 6, 0, cb));
    const buf = Buffer.alloc(11);
    const n = await call<number>((cb) => sftp.read(h, buf, 0, 11, 0, cb as never));
    expect(buf.subarray(0, n).toString()).toBe('hello world');
    await call((cb) => sftp.close(h, cb));
    expect((await call<Buffer>((cb) => sftp.readFile('/rw.bin', cb))).toString()).toBe('hello world');
  });

  it(`allows ${LIMITS.maxOpenHandles} open handles per session, not one more`, async () => {
    const { sftp } = await login();
    await call((cb) => sftp.writeFile('/h.txt', 'h', cb));
    const handles: Buffer[] = [];
    for (let i = 0; i < LIMITS.maxOpenHandles; i++) handles.push(await call<Buffer>((cb) => sftp.open('/h.txt', 'r', cb)));
    expect(await statusOf(call((cb) => sftp.open('/h.txt', 'r', cb)))).toBe(STATUS.FAILURE);
    for (const h of handles) await call((cb) => sftp.close(h, cb));
  });

  it('SYMLINK takes the target first (OpenSSH order); bad targets and READLINK of a non-link are BAD_MESSAGE; the session goes on', async () => {
    const { client, sftp } = await login();
    await call((cb) => sftp.writeFile('/t.txt', 't', cb));
    const raw = await RawSftp.open(client);
    await raw.init();
    const target = Buffer.from([0x74, 0x2e, 0x74, 0x78, 0x74, 0xff]); // bytes as given, not UTF-8
    raw.send(20, u32(1), str(target), str('/bytes'));
    expect(status((await raw.next())!)).toMatchObject({ id: 1, code: STATUS.OK });
    raw.send(19, u32(2), str('/bytes'));
    const name = (await raw.next())!;
    expect(name.type).toBe(104);
    expect(name.payload.readUInt32BE(4)).toBe(1);
    expect(name.payload.subarray(12, 12 + name.payload.readUInt32BE(8))).toEqual(target);
    const cases: [Buffer, number][] = [
      [Buffer.alloc(4096, 0x61), STATUS.BAD_MESSAGE], // over 4,095 bytes
      [Buffer.from('a\0b'), STATUS.BAD_MESSAGE],
      [Buffer.alloc(0), STATUS.BAD_MESSAGE],
    ];
    for (const [i, [bad, code]] of cases.entries()) {
      raw.send(20, u32(10 + i), str(bad), str(`/bad${i}`));
      expect(status((await raw.next())!)).toMatchObject({ id: 10 + i, code });
    }
    raw.send(19, u32(20), str('/t.txt'));
    expect(status((await raw.next())!)).toMatchObject({ id: 20, code: STATUS.BAD_MESSAGE });
    raw.send(19, u32(21), str('/missing'));
    expect(status((await raw.next())!)).toMatchObject({ id: 21, code: STATUS.NO_SUCH_FILE });
    raw.send(20, u32(22), str('t.txt'), str('/t.txt'));
    expect(status((await raw.next())!)).toMatchObject({ id: 22, code: STATUS.FAILURE }); // exists
    // A loop is FAILURE on STAT and OPEN, LSTAT still describes the link, and the session goes on.
    raw.send(20, u32(30), str('loop'), str('/loop'));
    expect(status((await raw.next())!)).toMatchObject({ id: 30, code: STATUS.OK });
    raw.send(17, u32(31), str('/loop'));
    expect(status((await raw.next())!)).toMatchObject({ id: 31, code: STATUS.FAILURE });
    raw.send(7, u32(32), str('/loop'));
    const attrs = (await raw.next())!;
    expect(attrs.type).toBe(105);
    expect(attrs.payload.readUInt32BE(4 + 4 + 8 + 8) & 0o170000).toBe(0o120000);
    expect(await call<Buffer>((cb) => sftp.readFile('/t.txt', cb))).toEqual(Buffer.from('t'));
  });

  it('setstat with a size cuts or extends a committed file', async () => {
    const { sftp } = await login();
    await call((cb) => sftp.writeFile('/cut.txt', 'abcdefghij', cb));
    await call((cb) => sftp.setstat('/cut.txt', { size: 4 }, cb));
    expect((await call<Buffer>((cb) => sftp.readFile('/cut.txt', cb))).toString()).toBe('abcd');
    await call((cb) => sftp.setstat('/cut.txt', { size: 6 }, cb));
    expect(await call<Buffer>((cb) => sftp.readFile('/cut.txt', cb))).toEqual(Buffer.from('abcd\0\0'));
  });
});

describe('password logins (ssh2 client)', () => {
  it('accepts the right password, refuses a wrong one and an unknown user with the same error', async () => {
    const good = await connectSsh2(gw.port, 'alice', { password: gw.password });
    good.end();
    const wrong = await connectSsh2(gw.port, 'alice', { password: 'nope' }).then(
      () => 'in',
      (e: Error) => e.message,
    );
    const unknown = await connectSsh2(gw.port, 'nobody', { password: 'nope' }).then(
      () => 'in',
      (e: Error) => e.message,
    );
    expect(wrong).toMatch(/authentication methods failed/);
    expect(unknown).toBe(wrong);
    const logins = gw.logs.filter((l) => l.event === 'login' && l.method === 'password');
    expect(logins.at(-1)).toMatchObject({ user: 'alice', remoteAddress: '127.0.0.1' });
    expect(JSON.stringify(gw.logs)).not.toContain(gw.root.toString());
  });

  it('refuses exec over ssh2 with the message and exit status 1', async () => {
    const { client } = await login();
    const result = await new Promise<{ code: number; stderr: string }>((resolve, reject) => {
      client.exec('ls', (err, stream) => {
        if (err) return reject(err);
        let stderr = '';
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        // 'exit' can come before the stderr stream has emitted its data; 'close' comes after both.
        let code = -1;
        stream.on('exit', (c: number) => (code = c));
        stream.on('close', () => resolve({ code, stderr }));
        stream.resume();
      });
    });
    expect(result).toEqual({ code: 1, stderr: SFTP_ONLY_MESSAGE });
  });
});

describe('what is not served', () => {
  it('refuses direct-tcpip, tcpip-forward and streamlocal', async () => {
    const { client } = await login();
    const out = await new Promise<Error | undefined>((resolve) => client.forwardOut('127.0.0.1', 1, '127.0.0.1', 9, (err) => resolve(err)));
    expect(out).toBeInstanceOf(Error);
    const inbound = await new Promise<Error | undefined>((resolve) => client.forwardIn('127.0.0.1', 0, (err) => resolve(err)));
    expect(inbound).toBeInstanceOf(Error);
    const local = await new Promise<Error | undefined>((resolve) =>
      client.openssh_forwardOutStreamLocal('/tmp/x.sock', (err) => resolve(err)),
    );
    expect(local).toBeInstanceOf(Error);
    const { sftp } = await login();
    expect(await call<string>((cb) => sftp.realpath('.', cb))).toBe('/');
  });
});

describe('directory listings', () => {
  it('pages a large directory in batches (ssh2 hides . and ..)', async () => {
    const { sftp } = await login();
    await call((cb) => sftp.mkdir('/many', cb));
    for (let i = 0; i < 250; i++) await call((cb) => sftp.writeFile(`/many/f${i}`, String(i), cb));
    const list = await call<{ filename: string; attrs: { size: number } }[]>((cb) => sftp.readdir('/many', cb));
    expect(list.map((e) => e.filename).sort()).toEqual(Array.from({ length: 250 }, (_, i) => `f${i}`).sort());
    expect(list.find((e) => e.filename === 'f123')?.attrs.size).toBe(3);
  });
});

describe('read-only sessions', () => {
  it('a gateway started readOnly refuses writes even with a write-cap root', async () => {
    const local = await startGateway({ readOnly: true });
    try {
      const { client, sftp } = await sessions.open(local.port, 'alice', { privateKey: await readFile(local.keyFile) });
      expect(await statusOf(call((cb) => sftp.writeFile('/x.txt', 'x', cb)))).toBe(STATUS.PERMISSION_DENIED);
      expect(await statusOf(call((cb) => sftp.mkdir('/d', cb)))).toBe(STATUS.PERMISSION_DENIED);
      expect((await call<{ mode: number }>((cb) => sftp.stat('/', cb))).mode & 0o222).toBe(0);
      client.end();
    } finally {
      await local.close();
    }
  });

  it('a read-cap root is read-only everywhere, statvfs says so', async () => {
    const { client, sftp } = await login('reader');
    expect(await statusOf(call((cb) => sftp.writeFile('/nope.txt', 'x', cb)))).toBe(STATUS.PERMISSION_DENIED);
    expect(await statusOf(call((cb) => sftp.mkdir('/nope', cb)))).toBe(STATUS.PERMISSION_DENIED);
    expect(await statusOf(call((cb) => sftp.writeFile(`/uri/${gw.root.toString()}/nope.txt`, 'x', cb)))).toBe(STATUS.PERMISSION_DENIED);
    const raw = await RawSftp.open(client);
    await raw.init();
    raw.send(200, u32(1), str('statvfs@openssh.com'), str('/'));
    const vfs = (await raw.next())!;
    expect(Number(vfs.payload.readBigUInt64BE(4 + 9 * 8)) & 1).toBe(1);
  });
});
