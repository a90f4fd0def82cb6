import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Client, SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_STEP, copyStatus } from '../../src/sftp/copy-data.js';
import type { ChunkStore } from '../../src/store/index.js';
import { call } from '../helpers/callback.js';
import { Ssh2Sessions, startGateway, type Gateway } from './gateway-fixture.js';
import { RawSftp, readString, status, str, u32, u64 } from './raw-sftp.js';

/**
 * The copy-data extension byte by byte: partial copies (a real, streamed
 * copy), the whole-file relink, and every refusal with the status OpenSSH's
 * sftp-server gives. `sftp cp` itself is in openssh-sftp.test.ts.
 */
const STATUS = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5 };
const PFLAGS = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 0x10 };
const CHUNK = 4096;

let gw: Gateway;
let key: Buffer;
let puts = 0;
const sessions = new Ssh2Sessions();
const source = randomBytes(10_000); // three chunks

const login = (user = 'alice'): Promise<{ client: Client; sftp: SFTPWrapper }> => sessions.open(gw.port, user, { privateKey: key });

beforeAll(async () => {
  const countPuts = (store: ChunkStore): ChunkStore =>
    new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'put') return (...args: unknown[]) => (puts++, (value as (...a: unknown[]) => unknown).apply(target, args));
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  gw = await startGateway({ chunkSize: CHUNK, wrapChunks: countPuts });
  key = await readFile(gw.keyFile);
});
afterAll(async () => {
  sessions.endAll();
  await gw?.close();
});

/** One session speaking raw packets, with numbered requests. */
class Session {
  #id = 100;
  constructor(readonly raw: RawSftp) {}

  static async open(user = 'alice'): Promise<Session> {
    const { client } = await login(user);
    const raw = await RawSftp.open(client);
    await raw.init();
    return new Session(raw);
  }

  async request(type: number, ...fields: Buffer[]): Promise<{ type: number; payload: Buffer }> {
    this.raw.send(type, u32(this.#id++), ...fields);
    return (await this.raw.next())!;
  }

  async open(path: string, pflags: number): Promise<Buffer> {
    const reply = await this.request(3, str(path), u32(pflags), u32(0));
    if (reply.type !== 102) throw new Error(`OPEN ${path}: status ${status(reply).code}`);
    return readString(reply.payload, 4)[0];
  }

  async opendir(path: string): Promise<Buffer> {
    const reply = await this.request(11, str(path));
    return readString(reply.payload, 4)[0];
  }

  async code(type: number, ...fields: Buffer[]): Promise<number> {
    return status(await this.request(type, ...fields)).code;
  }

  copy(from: Buffer, readOffset: number, length: number, to: Buffer, writeOffset: number): Promise<number> {
    return this.code(200, str('copy-data'), str(from), u64(readOffset), u64(length), str(to), u64(writeOffset));
  }

  write(handle: Buffer, offset: number, data: Buffer): Promise<number> {
    return this.code(6, str(handle), u64(offset), str(data));
  }

  close(handle: Buffer): Promise<number> {
    return this.code(4, str(handle));
  }
}

async function content(path: string): Promise<Buffer> {
  const { sftp } = await login();
  return call<Buffer>((cb) => sftp.readFile(path, cb));
}

async function capOf(name: string): Promise<string | undefined> {
  return (await gw.tree.directory(gw.root).lookup(name))?.cap.toString();
}

beforeAll(async () => {
  const { sftp } = await login();
  await call((cb) => sftp.writeFile('/src.bin', source, cb));
});

describe('copy-data', () => {
  it('copies a range to an offset, and a whole file into a handle holding data, byte for byte', async () => {
    const s = await Session.open();
    const from = await s.open('/src.bin', PFLAGS.READ);
    const part = await s.open('/part.bin', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    expect(await s.copy(from, 1000, 5000, part, 0)).toBe(STATUS.OK);
    expect(await s.copy(from, 0, 100, part, 8000)).toBe(STATUS.OK);
    expect(await s.close(part)).toBe(STATUS.OK);
    expect(await content('/part.bin')).toEqual(Buffer.concat([source.subarray(1000, 6000), Buffer.alloc(3000), source.subarray(0, 100)]));

    const held = await s.open('/held.bin', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    expect(await s.write(held, 0, Buffer.from('abc'))).toBe(STATUS.OK);
    expect(await s.copy(from, 0, 0, held, 3)).toBe(STATUS.OK);
    expect(await s.close(held)).toBe(STATUS.OK);
    expect(await content('/held.bin')).toEqual(Buffer.concat([Buffer.from('abc'), source]));

    // APPEND ignores the write offset, as OpenSSH's server does (no lseek on an O_APPEND handle).
    const app = await s.open('/held.bin', PFLAGS.WRITE | PFLAGS.APPEND);
    expect(await s.copy(from, 9990, 0, app, 2 ** 63)).toBe(STATUS.OK);
    expect(await s.close(app)).toBe(STATUS.OK);
    expect(await content('/held.bin')).toEqual(Buffer.concat([Buffer.from('abc'), source, source.subarray(9990)]));
    // From an upload open for reading and writing (not committed yet): copied out of what it holds now.
    const rw = await s.open('/rw.bin', PFLAGS.READ | PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    expect(await s.write(rw, 0, Buffer.from('0123456789'))).toBe(STATUS.OK);
    const fromUpload = await s.open('/from-upload.bin', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    expect(await s.copy(rw, 2, 5, fromUpload, 0)).toBe(STATUS.OK);
    for (const h of [rw, fromUpload, from]) expect(await s.close(h)).toBe(STATUS.OK);
    expect((await content('/from-upload.bin')).toString()).toBe('23456');
    expect(await content('/src.bin')).toEqual(source);
  });

  it('a whole file into an empty handle is a relink: the same cap, nothing stored but the directory update', async () => {
    const { sftp } = await login();
    // What a hard link stores (directory nodes only), to compare with.
    puts = 0;
    await call((cb) => sftp.ext_openssh_hardlink('/src.bin', '/linked.bin', cb));
    const linkPuts = puts;
    const s = await Session.open();
    const from = await s.open('/src.bin', PFLAGS.READ);
    const to = await s.open('/whole.bin', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    puts = 0;
    expect(await s.copy(from, 0, 0, to, 0)).toBe(STATUS.OK);
    expect(puts).toBe(0);
    expect(await s.close(to)).toBe(STATUS.OK);
    expect(puts).toBe(linkPuts);
    expect(await capOf('whole.bin')).toBe(await capOf('src.bin'));
    // A length past the end is the whole file too.
    const again = await s.open('/whole2.bin', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    expect(await s.copy(from, 0, source.length + 1, again, 0)).toBe(STATUS.OK);
    expect(await s.close(again)).toBe(STATUS.OK);
    expect(await capOf('whole2.bin')).toBe(await capOf('src.bin'));
    expect(await content('/whole.bin')).toEqual(source);
    // A file small enough to live in its cap (no chunk at all) relinks the same way.
    await call((cb) => sftp.writeFile('/tiny.txt', 'tiny', cb));
    const tiny = await s.open('/tiny.txt', PFLAGS.READ);
    const tinyCopy = await s.open('/tiny-copy.txt', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    expect(await s.copy(tiny, 0, 0, tinyCopy, 0)).toBe(STATUS.OK);
    for (const h of [tiny, tinyCopy]) expect(await s.close(h)).toBe(STATUS.OK);
    expect(await capOf('tiny-copy.txt')).toBe(await capOf('tiny.txt'));
    expect((await content('/tiny-copy.txt')).toString()).toBe('tiny');
    const attrs = await call<{ size: number }>((cb) => sftp.stat('/whole.bin', cb));
    expect(attrs.size).toBe(source.length);
  });

  it('refuses bad handles and offsets with the statuses of OpenSSH, and the session goes on', async () => {
    const s = await Session.open();
    const from = await s.open('/src.bin', PFLAGS.READ);
    const other = await s.open('/part.bin', PFLAGS.READ);
    const to = await s.open('/bad.bin', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    const dir = await s.opendir('/');
    const writeOnly = await s.open('/wo.bin', PFLAGS.WRITE | PFLAGS.CREAT | PFLAGS.TRUNC);
    const sameName = await s.open('/src.bin', PFLAGS.WRITE);
    // EBADF there: no such handle, a directory, a source not readable, a target not writable.
    expect(await s.copy(u32(9999), 0, 0, to, 0)).toBe(STATUS.NO_SUCH_FILE);
    expect(await s.copy(from, 0, 0, Buffer.from('nope'), 0)).toBe(STATUS.NO_SUCH_FILE);
    expect(await s.copy(dir, 0, 0, to, 0)).toBe(STATUS.NO_SUCH_FILE);
    expect(await s.copy(from, 0, 0, dir, 0)).toBe(STATUS.NO_SUCH_FILE);
    expect(await s.copy(writeOnly, 0, 0, to, 0)).toBe(STATUS.NO_SUCH_FILE);
    expect(await s.copy(from, 0, 0, other, 0)).toBe(STATUS.NO_SUCH_FILE);
    // The same handle, or the same name through two handles: FAILURE, whatever the ranges.
    expect(await s.copy(to, 0, 10, to, 100)).toBe(STATUS.FAILURE);
    expect(await s.copy(from, 0, 0, sameName, 0)).toBe(STATUS.FAILURE);
    // Offsets lseek refuses (past 2^63 - 1): BAD_MESSAGE; a truncated request too.
    expect(await s.copy(from, 2 ** 63, 0, to, 0)).toBe(STATUS.BAD_MESSAGE);
    expect(await s.copy(from, 0, 0, to, 2 ** 63)).toBe(STATUS.BAD_MESSAGE);
    expect(await s.code(200, str('copy-data'), str(from), u64(0), u64(0), str(to))).toBe(STATUS.BAD_MESSAGE);
    // Past the end: nothing copied; OK or EOF as OpenSSH's 64 KiB loop answers.
    expect(await s.copy(from, 20_000, 0, to, 0)).toBe(STATUS.OK);
    expect(await s.copy(from, 20_000, 1, to, 0)).toBe(STATUS.OK);
    expect(await s.copy(from, 20_000, 3 * COPY_STEP, to, 0)).toBe(STATUS.EOF);
    expect(await s.copy(from, 9000, 5000, to, 0)).toBe(STATUS.OK); // the last 1,000 bytes
    for (const h of [from, other, to, dir, writeOnly, sameName]) expect(await s.close(h)).toBe(STATUS.OK);
    expect(await content('/bad.bin')).toEqual(source.subarray(9000));
    expect(await content('/src.bin')).toEqual(source);
  });

  it('a read-only session refuses it before looking at the handles', async () => {
    const s = await Session.open('reader');
    const from = await s.open('/src.bin', PFLAGS.READ);
    expect(await s.copy(from, 0, 0, u32(1), 0)).toBe(STATUS.PERMISSION_DENIED);
    expect(await s.close(from)).toBe(STATUS.OK);
  });
});

describe('copyStatus', () => {
  /** OpenSSH's loop, step by step, with `available` bytes to read and `length` (> 0) asked. */
  function openssh(available: number, length: number): number {
    let left = length;
    let status = STATUS.OK;
    while (left > 0) {
      const len = Math.min(COPY_STEP, left);
      left -= len;
      const got = Math.min(len, available);
      available -= got;
      if (got === 0) {
        status = STATUS.EOF;
        break;
      }
    }
    return left === 0 ? STATUS.OK : status;
  }

  it('answers as the loop it describes, around every step boundary', () => {
    const around = (n: number): number[] => [n - 1, n, n + 1].filter((x) => x >= 0);
    const sizes = [0, 1, 100, ...around(COPY_STEP), ...around(2 * COPY_STEP), ...around(3 * COPY_STEP), 5 * COPY_STEP];
    for (const available of sizes)
      for (const length of sizes.filter((l) => l > 0))
        expect(copyStatus(BigInt(available), BigInt(length)), `${available} ${length}`).toBe(openssh(available, length));
  });
});
