import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client, SFTPWrapper } from 'ssh2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TransientError, type AbortOptions } from '../../src/errors.js';
import { ForwardingChunkStore, type ChunkAddress } from '../../src/store/index.js';
import { connectSsh2, Ssh2Sessions, sftpOf, startGateway, type Gateway } from './gateway-fixture.js';
import { call, statusOf } from '../helpers/callback.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Close-on-write uploads through ssh2's client: what other sessions see while
 * a file is being written, what CLOSE and fsync commit, what a failure or a
 * dropped connection leaves behind, and shutdown. The chunk store is wrapped
 * to inject failures and delays (the only fake here).
 */
class FaultyChunkStore extends ForwardingChunkStore {
  failPuts = false;
  putDelayMs = 0;
  putsStarted = 0;
  override async put(bytes: Uint8Array, options?: AbortOptions): Promise<ChunkAddress> {
    this.putsStarted++;
    if (this.putDelayMs > 0) await new Promise((r) => setTimeout(r, this.putDelayMs));
    if (this.failPuts) throw new TransientError('injected put failure');
    return this.inner.put(bytes, options);
  }
}

const STATUS = { NO_SUCH_FILE: 2, FAILURE: 4 };
const CHUNK = 4096;
let gw: Gateway;
let faults: FaultyChunkStore;
let key: Buffer;
const sessions = new Ssh2Sessions();

async function login(user = 'alice'): Promise<{ client: Client; sftp: SFTPWrapper }> {
  const opened = await sessions.open(gw.port, user, { privateKey: key });
  opened.client.on('error', () => {});
  return opened;
}

const names = async (sftp: SFTPWrapper, dir: string): Promise<Map<string, number>> =>
  new Map(
    (await call<{ filename: string; attrs: { size: number } }[]>((cb) => sftp.readdir(dir, cb))).map((e) => [e.filename, e.attrs.size]),
  );
const spoolFiles = async (): Promise<string[]> => readdir(join(gw.dir, 'spool'));

beforeAll(async () => {
  gw = await startGateway({ chunkSize: CHUNK, wrapChunks: (s) => (faults = new FaultyChunkStore(s)) });
  key = await readFile(gw.keyFile);
});
afterEach(() => {
  faults.failPuts = false;
  faults.putDelayMs = 0;
});
afterAll(async () => {
  sessions.endAll();
  await gw?.close();
});

describe('while a file is being written', () => {
  it('the same user sees it (stat, readdir) with its current size in every session; others only after CLOSE', async () => {
    const a = await login();
    const b = await login();
    const reader = await login('reader');
    const h = await call<Buffer>((cb) => a.sftp.open('/growing.bin', 'w', cb));
    await call((cb) => a.sftp.write(h, randomBytes(1000), 0, 1000, 0, cb));
    expect((await call<{ size: number }>((cb) => b.sftp.stat('/growing.bin', cb))).size).toBe(1000);
    expect((await names(b.sftp, '/')).get('growing.bin')).toBe(1000);
    expect(await statusOf(call((cb) => reader.sftp.stat('/growing.bin', cb)))).toBe(STATUS.NO_SUCH_FILE);
    expect((await names(reader.sftp, '/')).has('growing.bin')).toBe(false);
    await call((cb) => a.sftp.write(h, randomBytes(500), 0, 500, 1000, cb));
    expect((await call<{ size: number }>((cb) => a.sftp.fstat(h, cb))).size).toBe(1500);
    await call((cb) => a.sftp.close(h, cb));
    expect((await call<{ size: number }>((cb) => reader.sftp.stat('/growing.bin', cb))).size).toBe(1500);
  });

  it('fsync@openssh.com commits the content so far; the handle stays open', async () => {
    const a = await login();
    const other = await login('reader');
    const h = await call<Buffer>((cb) => a.sftp.open('/synced.txt', 'w', cb));
    await call((cb) => a.sftp.write(h, Buffer.from('first'), 0, 5, 0, cb));
    await call((cb) => a.sftp.ext_openssh_fsync(h, cb));
    expect((await call<Buffer>((cb) => other.sftp.readFile('/synced.txt', cb))).toString()).toBe('first');
    await call((cb) => a.sftp.write(h, Buffer.from(' second'), 0, 7, 5, cb));
    await call((cb) => a.sftp.close(h, cb));
    expect((await call<Buffer>((cb) => other.sftp.readFile('/synced.txt', cb))).toString()).toBe('first second');
  });

  it('a rename while open moves the upload; a remove while open drops it', async () => {
    const { sftp } = await login();
    const h = await call<Buffer>((cb) => sftp.open('/moving.txt', 'w', cb));
    await call((cb) => sftp.write(h, Buffer.from('moved'), 0, 5, 0, cb));
    await call((cb) => sftp.ext_openssh_rename('/moving.txt', '/moved.txt', cb));
    await call((cb) => sftp.close(h, cb));
    expect((await call<Buffer>((cb) => sftp.readFile('/moved.txt', cb))).toString()).toBe('moved');
    expect(await statusOf(call((cb) => sftp.stat('/moving.txt', cb)))).toBe(STATUS.NO_SUCH_FILE);
    const h2 = await call<Buffer>((cb) => sftp.open('/dropped.txt', 'w', cb));
    await call((cb) => sftp.write(h2, Buffer.from('gone'), 0, 4, 0, cb));
    await call((cb) => sftp.unlink('/dropped.txt', cb));
    await call((cb) => sftp.close(h2, cb));
    expect(await statusOf(call((cb) => sftp.stat('/dropped.txt', cb)))).toBe(STATUS.NO_SUCH_FILE);
  });
});

/**
 * A client with several connections (sshfs -o max_conns, rclone, lftp) sends
 * CLOSE on one and, without waiting for its reply, the next call on the
 * same name on another: the kernel sends FUSE's release after close(2) has
 * returned. So git's `config.lock` is renamed to `config`, and rsync's
 * temporary file gets its times, while the CLOSE still commits. The result
 * must be what one connection (or a disk) gives, whatever the timing.
 */
describe('a CLOSE still committing while another session of the same user acts on its name', () => {
  /** Opens NAME in session a, writes three chunks, and starts CLOSE; resolves once the commit is under way (its manifest put started). */
  async function closing(a: SFTPWrapper, name: string, data: Buffer): Promise<{ closed: Promise<unknown> }> {
    const h = await call<Buffer>((cb) => a.open(name, 'w', cb));
    faults.putDelayMs = 150;
    const putsBefore = faults.putsStarted;
    await call((cb) => a.write(h, data, 0, data.length, 0, cb));
    const closed = call((cb) => a.close(h, cb));
    // Three chunks (some may still be on their way when WRITE is answered), then the manifest,
    // whose put only CLOSE starts: once it has started, the commit is under way.
    await waitFor(() => faults.putsStarted >= putsBefore + 4);
    return { closed };
  }

  it('a rename moves the file being committed: the new name holds it, the old one is gone', async () => {
    const a = await login();
    const b = await login();
    const data = randomBytes(3 * CHUNK);
    const { closed } = await closing(a.sftp, '/config.lock', data);
    const renamed = call((cb) => b.sftp.ext_openssh_rename('/config.lock', '/config', cb));
    await Promise.all([closed, renamed]);
    expect((await call<Buffer>((cb) => b.sftp.readFile('/config', cb))).equals(data)).toBe(true);
    expect(await statusOf(call((cb) => b.sftp.stat('/config.lock', cb)))).toBe(STATUS.NO_SUCH_FILE);
    expect((await names(b.sftp, '/')).has('config.lock')).toBe(false);
  });

  it('a remove acknowledged after the CLOSE started leaves no file behind', async () => {
    const a = await login();
    const b = await login();
    const { closed } = await closing(a.sftp, '/index.lock', randomBytes(3 * CHUNK));
    const removed = call((cb) => b.sftp.unlink('/index.lock', cb));
    await Promise.all([closed, removed]);
    expect(await statusOf(call((cb) => b.sftp.stat('/index.lock', cb)))).toBe(STATUS.NO_SUCH_FILE);
    expect((await names(a.sftp, '/')).has('index.lock')).toBe(false);
  });

  it('an OPEN to read or to append waits for that commit, and starts from what it committed', async () => {
    const a = await login();
    const b = await login();
    const data = randomBytes(3 * CHUNK);
    const { closed } = await closing(a.sftp, '/COMMIT_EDITMSG', data);
    const read = call<Buffer>((cb) => b.sftp.readFile('/COMMIT_EDITMSG', cb));
    expect((await read).equals(data)).toBe(true);
    await closed;
    const { closed: closedToo } = await closing(a.sftp, '/appended.log', data);
    const appended = call((cb) => b.sftp.appendFile('/appended.log', Buffer.from('tail'), cb));
    await Promise.all([closedToo, appended]);
    expect((await call<Buffer>((cb) => b.sftp.readFile('/appended.log', cb))).equals(Buffer.concat([data, Buffer.from('tail')]))).toBe(
      true,
    );
  });

  it('times set meanwhile are the file’s times once both are done (rsync -a, cp -p)', async () => {
    const a = await login();
    const b = await login();
    const data = randomBytes(3 * CHUNK);
    const { closed } = await closing(a.sftp, '/.timed.tmp', data);
    const timed = call((cb) => b.sftp.setstat('/.timed.tmp', { atime: 1_000_000_000, mtime: 1_000_000_000 }, cb));
    await Promise.all([closed, timed]);
    const attrs = await call<{ mtime: number; size: number }>((cb) => b.sftp.stat('/.timed.tmp', cb));
    expect({ mtime: attrs.mtime, size: attrs.size }).toEqual({ mtime: 1_000_000_000, size: data.length });
  });
});

describe('commits', () => {
  it('pipelined sequential writes stream (no spool) and a large CLOSE is quick', async () => {
    const { sftp } = await login();
    const data = randomBytes(8 * 1024 * 1024 + 17);
    await call((cb) => sftp.writeFile('/streamed.bin', data, cb));
    const commit = gw.logs.filter((l) => l.event === 'commit').at(-1);
    expect(commit).toMatchObject({ mode: 'stream', size: data.length });
    expect(commit!.ms as number).toBeLessThan(1000);
    expect((await call<Buffer>((cb) => sftp.readFile('/streamed.bin', cb))).equals(data)).toBe(true); // toEqual on MiBs is very slow
  });

  it('a failing store makes CLOSE fail and leaves the previous version exactly as it was', async () => {
    const { sftp } = await login();
    const v1 = randomBytes(5 * CHUNK);
    await call((cb) => sftp.writeFile('/precious.bin', v1, cb));
    const failedBefore = gw.server.stats.uploadsFailed;
    const h = await call<Buffer>((cb) => sftp.open('/precious.bin', 'w', cb));
    await call((cb) => sftp.write(h, randomBytes(CHUNK - 1), 0, CHUNK - 1, 0, cb));
    faults.failPuts = true;
    const err = await statusOf(call((cb) => sftp.close(h, cb)));
    expect(err).toBe(STATUS.FAILURE);
    faults.failPuts = false;
    expect(gw.server.stats.uploadsFailed).toBe(failedBefore + 1);
    expect((await call<Buffer>((cb) => sftp.readFile('/precious.bin', cb))).equals(v1)).toBe(true);
    expect((await names(sftp, '/')).get('precious.bin')).toBe(v1.length);
  });

  it('a dropped connection abandons its upload and frees the spool', async () => {
    const { client, sftp } = await login();
    const h = await call<Buffer>((cb) => sftp.open('/abandoned.bin', 'w', cb));
    await call((cb) => sftp.write(h, randomBytes(100), 0, 100, 5000, cb)); // out of order: spooled
    expect(await spoolFiles()).toHaveLength(1);
    client.destroy();
    await waitFor(async () => (await spoolFiles()).length === 0);
    const { sftp: again } = await login();
    expect(await statusOf(call((cb) => again.stat('/abandoned.bin', cb)))).toBe(STATUS.NO_SUCH_FILE);
  });
});

describe('sparse files and writes into large ones', () => {
  const MiB = 1024 * 1024;
  /** Disk the gateway's spool files take now (allocated blocks, not their apparent size). */
  const spoolDisk = async (): Promise<number> => {
    let bytes = 0;
    for (const f of await spoolFiles()) bytes += (await stat(join(gw.dir, 'spool', f))).blocks * 512;
    return bytes;
  };
  const readRange = async (sftp: SFTPWrapper, h: Buffer, offset: number, length: number): Promise<Buffer> => {
    const out = Buffer.alloc(length);
    const n = await call<number>((cb) => sftp.read(h, out, 0, length, offset, cb));
    return out.subarray(0, n);
  };

  it('a truncate up and a write far past the end take no spool disk; the gaps are zeros before and after CLOSE', async () => {
    const { sftp } = await login();
    const h = await call<Buffer>((cb) => sftp.open('/sparse.bin', 'w+', cb));
    await call((cb) => sftp.write(h, Buffer.from('head'), 0, 4, 0, cb));
    await call((cb) => sftp.fsetstat(h, { size: 64 * MiB }, cb));
    await call((cb) => sftp.write(h, Buffer.from('tail'), 0, 4, 48 * MiB, cb));
    expect(await spoolDisk()).toBeLessThan(MiB);
    expect((await readRange(sftp, h, 48 * MiB - 2, 8)).toString('latin1')).toBe('\0\0tail\0\0');
    await call((cb) => sftp.close(h, cb));
    const expected = Buffer.alloc(64 * MiB);
    expected.write('head', 0);
    expected.write('tail', 48 * MiB);
    expect((await call<Buffer>((cb) => sftp.readFile('/sparse.bin', cb))).equals(expected)).toBe(true);
  });

  it('a write into the middle of a large file copies none of it to the spool, and changes only those bytes', async () => {
    const { sftp } = await login();
    const v1 = randomBytes(32 * MiB);
    await call((cb) => sftp.writeFile('/large.bin', v1, cb));
    const h = await call<Buffer>((cb) => sftp.open('/large.bin', 'r+', cb));
    const patch = randomBytes(4096);
    await call((cb) => sftp.write(h, patch, 0, patch.length, 16 * MiB + 5, cb));
    expect(await spoolDisk()).toBeLessThan(64 * 1024);
    expect(
      (await readRange(sftp, h, 16 * MiB, 10)).equals(Buffer.concat([v1.subarray(16 * MiB, 16 * MiB + 5), patch.subarray(0, 5)])),
    ).toBe(true);
    await call((cb) => sftp.close(h, cb));
    const v2 = Buffer.from(v1);
    patch.copy(v2, 16 * MiB + 5);
    expect((await call<Buffer>((cb) => sftp.readFile('/large.bin', cb))).equals(v2)).toBe(true);
  });

  it('a write or a truncate past the largest file is refused at once; the upload and the gateway go on', async () => {
    const { sftp } = await login();
    const h = await call<Buffer>((cb) => sftp.open('/huge.bin', 'w', cb));
    await call((cb) => sftp.write(h, Buffer.from('kept'), 0, 4, 0, cb));
    for (const offset of [gw.tree.maxFileSize, 2 ** 50]) {
      expect(await statusOf(call((cb) => sftp.write(h, Buffer.from('x'), 0, 1, offset, cb)))).toBe(STATUS.FAILURE);
      expect(await statusOf(call((cb) => sftp.fsetstat(h, { size: offset + 1 }, cb)))).toBe(STATUS.FAILURE);
    }
    expect(await spoolDisk()).toBeLessThan(64 * 1024);
    await call((cb) => sftp.close(h, cb));
    expect((await call<Buffer>((cb) => sftp.readFile('/huge.bin', cb))).toString()).toBe('kept');
  });
});

describe('shutdown and timeouts', () => {
  it('close(grace) lets a CLOSE in flight commit, then ends the sessions', async () => {
    let slow!: FaultyChunkStore;
    const local = await startGateway({
      chunkSize: CHUNK,
      wrapChunks: (s) => (slow = Object.assign(new FaultyChunkStore(s), { putDelayMs: 150 })),
    });
    try {
      const client = await connectSsh2(local.port, 'alice', { privateKey: await readFile(local.keyFile) });
      client.on('error', () => {});
      const sftp = await sftpOf(client);
      const data = randomBytes(6 * CHUNK);
      const h = await call<Buffer>((cb) => sftp.open('/late.bin', 'w', cb));
      const putsBefore = slow.putsStarted;
      await call((cb) => sftp.write(h, data, 0, data.length, 0, cb));
      const closed = call((cb) => sftp.close(h, cb));
      // Six chunks (some may still be on their way when WRITE is answered), then the manifest,
      // whose put only CLOSE starts: once it has started, the commit is under way.
      await waitFor(() => slow.putsStarted >= putsBefore + 7);
      await local.server.close(10_000);
      await closed;
      const node = await local.tree.resolve(local.root, ['late.bin']);
      const reader = await local.tree.openFile(node.cap as never);
      expect(Buffer.from(await reader.read(0, data.length)).equals(data)).toBe(true);
    } finally {
      await local.close();
    }
  });

  it('an idle connection is closed after idleTimeoutMs', async () => {
    const local = await startGateway({ idleTimeoutMs: 300 });
    try {
      const client = await connectSsh2(local.port, 'alice', { privateKey: await readFile(local.keyFile) });
      client.on('error', () => {});
      await sftpOf(client);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      await closed;
      expect(local.logs.some((l) => l.reason === 'idle timeout')).toBe(true);
    } finally {
      await local.close();
    }
  });

  it('a client that sends SSH keepalives is not idle (sshfs -o ServerAliveInterval)', async () => {
    const local = await startGateway({ idleTimeoutMs: 300 });
    try {
      // keepalive@openssh.com every 100 ms, and no SFTP request for 1.5 s: five idle timeouts.
      const client = await connectSsh2(local.port, 'alice', { privateKey: await readFile(local.keyFile) }, { keepaliveInterval: 100 });
      client.on('error', () => {});
      const sftp = await sftpOf(client);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await call((cb) => sftp.writeFile('/still-here.txt', 'yes', cb));
      expect((await call<Buffer>((cb) => sftp.readFile('/still-here.txt', cb))).toString()).toBe('yes');
      expect(local.logs.some((l) => l.reason === 'idle timeout')).toBe(false);
      client.end();
    } finally {
      await local.close();
    }
  });
});
