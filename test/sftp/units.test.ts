import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiteralCap, type DirectoryWriteCap, type FileCap } from '../../src/cap/index.js';
import {
  AlreadyExistsError,
  type CapstanError,
  IntegrityError,
  InvalidInputError,
  IsADirectoryError,
  NotADirectoryError,
  NotEmptyError,
  NotFoundError,
  PermissionError,
  QuotaExceededError,
  TransientError,
  UnsupportedError,
} from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { MemoryChunkStore, MemorySlotStore } from '../../src/store/index.js';
import { longname, makeAttrs } from '../../src/sftp/attrs.js';
import { parsePath } from '../../src/sftp/paths.js';
import { STATUS } from '../../src/sftp/protocol/constants.js';
import { RequestScheduler } from '../../src/sftp/scheduler.js';
import { toSftpStatus } from '../../src/sftp/status.js';
import { WriteHandle } from '../../src/sftp/write-handle.js';
import { createTree, type Tree } from '../../src/tree/index.js';
import { EncryptedSpool, type SpoolBase } from '../../src/sftp/spool.js';

describe('paths', () => {
  it('resolves ., .., // and relative paths from /, never above it', () => {
    expect(parsePath('.').canonical).toBe('/');
    expect(parsePath('').canonical).toBe('/');
    expect(parsePath('a//b/./c/..').canonical).toBe('/a/b');
    expect(parsePath('/../../x').components).toEqual(['x']);
  });

  it('keeps names byte for byte and refuses bad ones', () => {
    expect(parsePath('/cafe\u0301').components).toEqual(['cafe\u0301']);
    expect(parsePath('/caf\u00e9').components).toEqual(['caf\u00e9']);
    expect(() => parsePath('/' + 'a'.repeat(256))).toThrow(InvalidInputError);
  });

  it('a real U+FFFD is an ordinary character (invalid UTF-8 is refused by the packet layer, before paths)', () => {
    expect(parsePath('/a\uFFFDb').components).toEqual(['a\uFFFDb']);
  });

  it('/uri/CAP starts at the cap; malformed caps name nothing; other names under uri are ordinary', () => {
    const cap = new LiteralCap(Buffer.from('hi')).toString();
    const parsed = parsePath(`/uri/${cap}/x/..`);
    expect(parsed.uriCap?.kind).toBe('literal');
    expect(parsed.components).toEqual([]);
    expect(() => parsePath('/uri/CS1:DIR:short')).toThrow(NotFoundError);
    expect(() => parsePath('/uri/CS1:FUTURE:x')).toThrow(NotFoundError);
    expect(parsePath('/uri/notes.txt')).toMatchObject({ uriCap: undefined, components: ['uri', 'notes.txt'] });
  });
});

describe('status mapping', () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const secret = 'CS1:DIR:supersecretcapstringthatmustnotleak';

  it.each([
    [new NotFoundError(secret), STATUS.NO_SUCH_FILE],
    [new NotADirectoryError(secret), STATUS.NO_SUCH_FILE],
    [new PermissionError(secret), STATUS.PERMISSION_DENIED],
    [new AlreadyExistsError(secret), STATUS.FAILURE],
    [new NotEmptyError(secret), STATUS.FAILURE],
    [new IsADirectoryError(secret), STATUS.FAILURE],
    [new IntegrityError(secret), STATUS.FAILURE],
    [new QuotaExceededError(secret), STATUS.FAILURE],
    [new InvalidInputError(secret), STATUS.BAD_MESSAGE],
    [new UnsupportedError(secret), STATUS.OP_UNSUPPORTED],
  ])('%s → code %i, a fixed message without the error text', (err: CapstanError, code: number) => {
    const mapped = toSftpStatus(err, logger, 'test');
    expect(mapped.code).toBe(code);
    expect(mapped.message).not.toContain('secret');
  });

  it('logs a TransientError at warn (the client sees only "Failure"), with its message and the op', () => {
    const before = lines.length;
    const mapped = toSftpStatus(new TransientError('directory 00ff: gave up after 64 conflicting updates'), logger, 'close');
    expect(mapped).toEqual({ code: STATUS.FAILURE, message: 'storage temporarily unavailable, try again' });
    const logged = lines.slice(before);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 40, op: 'close', err: 'directory 00ff: gave up after 64 conflicting updates' });
  });

  it('maps subclasses like their parent, anything else to FAILURE "internal error" (logged)', () => {
    class SpecialNotFound extends NotFoundError {}
    expect(toSftpStatus(new SpecialNotFound('x'), logger, 'op').code).toBe(STATUS.NO_SUCH_FILE);
    expect(toSftpStatus(new TypeError(secret), logger, 'op')).toEqual({ code: STATUS.FAILURE, message: 'internal error' });
    expect(toSftpStatus('thrown string', logger, 'op').code).toBe(STATUS.FAILURE);
    expect(lines.filter((l) => l.msg === 'unexpected error in SFTP request')).toHaveLength(2);
    expect(toSftpStatus(Object.assign(new Error('x'), { name: 'toString' }), logger, 'op').message).toBe('internal error');
  });
});

describe('attributes and ls -l lines', () => {
  it('drops w bits for read-only entries, uses OpenSSH ls_file layout', () => {
    const t = Date.UTC(2001, 1, 3, 12, 0, 0);
    const file = makeAttrs('file', { mtimeMs: t }, 1234, true);
    expect(file.mode).toBe(0o100644);
    expect(makeAttrs('file', { mtimeMs: t }, 1, false).mode).toBe(0o100444);
    expect(makeAttrs('directory', undefined, 0, true).mode).toBe(0o40755);
    expect(makeAttrs('directory', undefined, 0, false).mode).toBe(0o40555);
    expect(longname('name', file, 'bob')).toMatch(/^-rw-r--r-- {4}1 bob {6}bob {10}1234 Feb {2}3 {2}2001 name$/);
    const recent = makeAttrs('directory', { mtimeMs: Date.now() }, 0, true);
    expect(longname('d', recent, 'someone-long')).toMatch(/^drwxr-xr-x {4}1 someone-long someone-long {8}0 \w{3} [ \d]\d \d\d:\d\d d$/);
  });
});

describe('request scheduler', () => {
  // Requests that take this long to run (work, not synchronisation): the scheduler's order is what is checked.
  const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

  it('runs exclusive requests one at a time in order; shared ones together between them', async () => {
    const log: string[] = [];
    const s = new RequestScheduler({ maxShared: 4 });
    const task = (name: string, exclusive: boolean, ms: number) => ({
      exclusive,
      bytes: 0,
      run: async () => {
        log.push(`+${name}`);
        await tick(ms);
        log.push(`-${name}`);
      },
    });
    s.push(task('w1', true, 20));
    s.push(task('r1', false, 10));
    s.push(task('r2', false, 10));
    s.push(task('w2', true, 1));
    await s.idle();
    expect(log).toEqual(['+w1', '-w1', '+r1', '+r2', '-r1', '-r2', '+w2', '-w2']);
  });

  it('asks to pause the socket above the byte bound and to resume below half of it', async () => {
    const events: boolean[] = [];
    const s = new RequestScheduler({ highWaterBytes: 100, onPressure: (p) => events.push(p) });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    s.push({ exclusive: true, bytes: 60, run: () => gate });
    s.push({ exclusive: true, bytes: 60, run: async () => {} });
    expect(events).toEqual([true]);
    release();
    await s.idle();
    expect(events).toEqual([true, false]);
  });

  it('close() drops what has not started and waits for what has', async () => {
    const ran: string[] = [];
    const s = new RequestScheduler();
    s.push({
      exclusive: true,
      bytes: 0,
      run: async () => {
        await tick(20);
        ran.push('a');
      },
    });
    s.push({ exclusive: true, bytes: 10, run: async () => void ran.push('b') });
    await s.close();
    expect(ran).toEqual(['a']);
    expect(s.bytes).toBe(0);
  });
});

describe('write handle', () => {
  let tree: Tree;
  let root: DirectoryWriteCap;
  let spoolDir: string;
  const convergence = new Uint8Array(32).fill(1);

  beforeAll(async () => {
    tree = createTree({ chunks: new MemoryChunkStore(), slots: new MemorySlotStore(), chunkSize: 4096 });
    root = await tree.createDirectory();
    spoolDir = await mkdtemp(join(tmpdir(), 'capstan-wh-'));
  });
  afterAll(async () => {
    await rm(spoolDir, { recursive: true, force: true });
  });

  const deps = () => ({ tree, convergence, createSpool: (base?: SpoolBase) => EncryptedSpool.create(spoolDir, { base }) });
  const content = async (name: string): Promise<Buffer> => {
    const entry = await tree.directory(root).lookup(name);
    const reader = await tree.openFile(entry!.cap as FileCap);
    return Buffer.from(await reader.read(0, reader.size + 1));
  };

  it('streams in-order writes, spools out-of-order ones, and commits either exactly', async () => {
    const dir = tree.directory(root);
    const h = new WriteHandle(deps(), { dir, name: 'a' }, { append: false, readable: true });
    const data = randomBytes(10_000);
    await h.write(0, data.subarray(0, 4000));
    await h.write(4000, data.subarray(4000, 9000));
    expect(h.mode).toBe('stream');
    await h.write(9000, data.subarray(9000));
    expect(await h.commit()).toBe(true);
    expect((await content('a')).equals(data)).toBe(true);
    expect(h.mode).toBe('clean');

    const patched = Buffer.from(data);
    randomBytes(100).copy(patched, 50);
    await h.write(50, patched.subarray(50, 150));
    expect(h.mode).toBe('spool');
    expect(Buffer.from(await h.read(0, 200)).equals(patched.subarray(0, 200))).toBe(true);
    await h.truncate(12_000);
    await h.commit();
    expect((await content('a')).equals(Buffer.concat([patched, Buffer.alloc(2000)]))).toBe(true);
    await h.abandon();
    expect(await readdir(spoolDir)).toEqual([]);
  });

  it('appending to an existing file pipes the old content into a stream (resume), no spool', async () => {
    const dir = tree.directory(root);
    const first = randomBytes(5000);
    const h1 = new WriteHandle(deps(), { dir, name: 'b' }, { append: false, readable: false });
    await h1.write(0, first);
    await h1.commit();
    const entry = await dir.lookup('b');
    const h2 = new WriteHandle(deps(), { dir, name: 'b' }, { base: entry!.cap as FileCap, baseSize: 5000, append: true, readable: false });
    const more = randomBytes(3000);
    await h2.write(0, more); // APPEND: the offset is ignored
    expect(h2.mode).toBe('stream');
    await h2.commit();
    expect((await content('b')).equals(Buffer.concat([first, more]))).toBe(true);
  });

  it('an orphaned handle commits nothing; truncate to 0 starts a fresh stream', async () => {
    const dir = tree.directory(root);
    const h = new WriteHandle(deps(), { dir, name: 'c' }, { append: false, readable: false });
    await h.write(10, Buffer.from('x'));
    expect(h.mode).toBe('spool');
    await h.truncate(0);
    expect(h.mode).toBe('fresh');
    await h.write(0, Buffer.from('fresh'));
    expect(h.mode).toBe('stream');
    h.orphaned = true;
    expect(await h.commit()).toBe(false);
    await h.abandon();
    expect(await dir.lookup('c')).toBeUndefined();
  });
});
