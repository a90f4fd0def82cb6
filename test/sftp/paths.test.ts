import { readFile } from 'node:fs/promises';
import type { Client, SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ssh2Sessions, startGateway, type Gateway } from './gateway-fixture.js';
import { RawSftp, readString, status, str, u32 } from './raw-sftp.js';
import { call, statusOf } from '../helpers/callback.js';

/**
 * Path tricks: every one either names something inside the session's root
 * (or inside a cap the client typed after /uri/) or fails with a clear
 * status; none reaches anything else, and none hurts the session.
 */
const STATUS = { OK: 0, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5 };
const SSH_FXP = { OPENDIR: 11, REALPATH: 16, STAT: 17, MKDIR: 14, NAME: 104 };

let gw: Gateway;
let key: Buffer;
const sessions = new Ssh2Sessions();

const login = (user = 'alice'): Promise<{ client: Client; sftp: SFTPWrapper }> => sessions.open(gw.port, user, { privateKey: key });

const names = async (sftp: SFTPWrapper, p: string): Promise<string[]> =>
  (await call<{ filename: string }[]>((cb) => sftp.readdir(p, cb))).map((e) => e.filename).sort();
const realpath = (sftp: SFTPWrapper, p: string): Promise<string> => call<string>((cb) => sftp.realpath(p, cb));

beforeAll(async () => {
  gw = await startGateway({ chunkSize: 4096 });
  key = await readFile(gw.keyFile);
});
afterAll(async () => {
  sessions.endAll();
  await gw?.close();
});

describe('path tricks', () => {
  it('`..`, `//` and `/./` resolve textually and never climb above the root', async () => {
    const { sftp } = await login();
    await call((cb) => sftp.mkdir('/../../escape', cb));
    expect(await names(sftp, '/')).toContain('escape');
    for (const p of ['/..', '/../..', '//..//.', '/escape/../../..', '..', '.']) expect(await realpath(sftp, p)).toBe('/');
    await call((cb) => sftp.mkdir('//escape//./inner/', cb));
    expect(await realpath(sftp, '/escape/./inner/../inner//')).toBe('/escape/inner');
    expect(await names(sftp, '/./escape/../escape//')).toEqual(['inner']);
    // /uri/CAP/.. is the root's own `uri` entry (absent), never something above the cap.
    const cap = gw.root.toString();
    expect(await realpath(sftp, `/uri/${cap}/../..`)).toBe('/');
    expect(await statusOf(call((cb) => sftp.stat(`/uri/${cap}/..`, cb)))).toBe(STATUS.NO_SUCH_FILE);
    expect(await names(sftp, `/uri/${cap}/escape/../escape`)).toEqual(['inner']);
  });

  it('a name over 255 bytes is BAD_MESSAGE; a path over 4096 bytes fails cleanly; 255 bytes is fine', async () => {
    const { sftp } = await login();
    const max = 'n'.repeat(255);
    await call((cb) => sftp.mkdir(`/${max}`, cb));
    expect(await names(sftp, '/')).toContain(max);
    expect(await statusOf(call((cb) => sftp.mkdir(`/${'n'.repeat(256)}`, cb)))).toBe(STATUS.BAD_MESSAGE);
    // Multi-byte: 128 two-byte characters are 256 bytes.
    expect(await statusOf(call((cb) => sftp.mkdir(`/${'é'.repeat(128)}`, cb)))).toBe(STATUS.BAD_MESSAGE);
    const long = `/${max}/${Array.from({ length: 20 }, () => 'x'.repeat(250)).join('/')}`;
    expect(Buffer.byteLength(long)).toBeGreaterThan(4096);
    expect(await statusOf(call((cb) => sftp.mkdir(long, cb)))).toBe(STATUS.NO_SUCH_FILE);
    expect(await statusOf(call((cb) => sftp.stat(`/${'a/'.repeat(3000)}`, cb)))).toBeGreaterThan(0);
    // The session still works.
    expect(await realpath(sftp, '/')).toBe('/');
  });

  it('names come back byte for byte: NFD and NFC spellings are two entries, as on Linux', async () => {
    const { sftp } = await login();
    const decomposed = 'cafe\u0301';
    const composed = 'caf\u00e9';
    await call((cb) => sftp.mkdir(`/${decomposed}`, cb));
    expect(await statusOf(call((cb) => sftp.stat(`/${composed}`, cb)))).toBe(STATUS.NO_SUCH_FILE);
    await call((cb) => sftp.mkdir(`/${composed}`, cb));
    const listed = (await names(sftp, '/')).filter((n) => n.normalize('NFC') === composed);
    expect(listed.sort()).toEqual([composed, decomposed].sort());
    expect((await call<{ isDirectory(): boolean }>((cb) => sftp.stat(`/${decomposed}`, cb))).isDirectory()).toBe(true);
  });

  it('NUL and invalid UTF-8 in raw path bytes: clear status, same session keeps working', async () => {
    const { client } = await login();
    const raw = await RawSftp.open(client);
    await raw.init();
    let id = 1;
    const ask = async (type: number, pathBytes: Buffer): Promise<number> => {
      raw.send(type, u32(++id), str(pathBytes), ...(type === SSH_FXP.MKDIR ? [u32(0)] : []));
      const p = (await raw.next())!;
      return status(p).code;
    };
    expect(await ask(SSH_FXP.MKDIR, Buffer.from('/a\0b'))).toBe(STATUS.BAD_MESSAGE);
    expect(await ask(SSH_FXP.STAT, Buffer.from('/a\0b'))).toBe(STATUS.BAD_MESSAGE);
    const invalid = Buffer.concat([Buffer.from('/bad-'), Buffer.from([0xff, 0xfe, 0xc3])]);
    expect(await ask(SSH_FXP.MKDIR, invalid)).toBe(STATUS.NO_SUCH_FILE);
    expect(await ask(SSH_FXP.STAT, invalid)).toBe(STATUS.NO_SUCH_FILE);
    expect(await ask(SSH_FXP.OPENDIR, invalid)).toBe(STATUS.NO_SUCH_FILE);
    // Overlong encoding of '/' (0xC0 0xAF) is invalid UTF-8, not a separator.
    expect(await ask(SSH_FXP.STAT, Buffer.from([0x2f, 0x2e, 0x2e, 0xc0, 0xaf, 0x2e, 0x2e]))).toBe(STATUS.NO_SUCH_FILE);
    raw.send(SSH_FXP.REALPATH, u32(++id), str('/../..'));
    const name = (await raw.next())!;
    expect(name.type).toBe(SSH_FXP.NAME);
    expect(readString(name.payload, 8)[0].toString()).toBe('/');
  });

  it('/uri/: a malformed or unknown cap names nothing; a read cap typed there is read-only; the reader cannot climb to a write cap', async () => {
    const { sftp } = await login();
    expect(await statusOf(call((cb) => sftp.stat('/uri/CS1:DIR2:garbage', cb)))).toBe(STATUS.NO_SUCH_FILE);
    expect(await statusOf(call((cb) => sftp.stat('/uri/CS1:FUTURE:abc', cb)))).toBe(STATUS.NO_SUCH_FILE);
    const readCap = gw.root.readonly().toString();
    expect(await names(sftp, `/uri/${readCap}`)).toEqual(await names(sftp, '/'));
    expect(await statusOf(call((cb) => sftp.mkdir(`/uri/${readCap}/nope`, cb)))).toBe(STATUS.PERMISSION_DENIED);

    const reader = (await login('reader')).sftp;
    expect(await statusOf(call((cb) => reader.mkdir('/../nope', cb)))).toBe(STATUS.PERMISSION_DENIED);
    // A read-only session refuses every write before any lookup (as sftp-server -R does)...
    expect(await statusOf(call((cb) => reader.mkdir(`/uri/${readCap}/../nope`, cb)))).toBe(STATUS.PERMISSION_DENIED);
    // ...and `..` is textual: this is `/uri/nope` under the reader's own root (no `uri` entry there).
    expect(await statusOf(call((cb) => reader.stat(`/uri/${readCap}/../nope`, cb)))).toBe(STATUS.NO_SUCH_FILE);
    // Nothing the reader can list or resolve spells the write cap.
    const seen = [await realpath(reader, `/uri/${readCap}/escape/..`), ...(await names(reader, '/'))].join('\n');
    expect(seen).not.toContain(gw.root.toString());
  });
});
