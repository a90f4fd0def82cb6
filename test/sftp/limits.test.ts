import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type ssh2 from 'ssh2';
import { MemoryBudget } from '../../src/util/memory-budget.js';
import { READ_CACHE_BYTES, readCache } from '../../src/tree/file/read-cache.js';
import { call } from '../helpers/callback.js';
import { waitFor } from '../helpers/wait.js';
import { connectSsh2, Ssh2Sessions, sftpOf, startGateway, type Gateway, type GatewayOptions } from './gateway-fixture.js';

/**
 * [limits]: connection limits at accept (before any SSH byte), the login
 * grace time, per-account sessions, per-session handles, and a client that
 * floods requests without reading the replies.
 */

const gateways: Gateway[] = [];
const sessions = new Ssh2Sessions();
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  sessions.endAll();
  for (const g of gateways.splice(0)) await g.close();
});

async function gateway(limits: GatewayOptions['server']): Promise<Gateway> {
  const g = await startGateway({ server: limits });
  gateways.push(g);
  return g;
}

/** A raw TCP connection: resolves with what the server sent before closing, or the first bytes if it stays open. */
function probe(port: number, localAddress?: string): Promise<{ banner: string; closed: boolean; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    sockets.push(socket);
    let banner = '';
    socket.on('error', () => {});
    socket.on('data', (d) => {
      banner += d.toString('latin1');
      if (banner.includes('\r\n')) resolve({ banner, closed: false, socket });
    });
    socket.once('close', () => resolve({ banner, closed: true, socket }));
  });
}

async function login(g: Gateway, user = 'alice'): Promise<ssh2.Client> {
  return sessions.connect(g.port, user, { privateKey: await readFile(g.keyFile) });
}

describe('[limits]', () => {
  it('refuses the connection past max_connections before the SSH banner, and accepts again when one closes', async () => {
    const g = await gateway({ limits: { maxConnections: 2 } });
    const a = await probe(g.port);
    const b = await probe(g.port);
    expect(a.banner).toMatch(/^SSH-2\.0-capstan/);
    expect(b.banner).toMatch(/^SSH-2\.0-capstan/);
    const c = await probe(g.port);
    expect(c).toMatchObject({ closed: true, banner: '' });
    expect(g.logs.some((l) => l.event === 'connection_refused' && l.reason === 'max_connections')).toBe(true);
    a.socket.destroy();
    // The slot is free once the server has seen the close; retry briefly until it has.
    let again = await probe(g.port);
    for (let i = 0; i < 50 && again.closed; i++) again = await probe(g.port);
    expect(again.banner).toMatch(/^SSH-2\.0-capstan/);
  });

  it('limits connections per client address, other addresses unaffected', async () => {
    const g = await gateway({ limits: { maxConnections: 10, maxConnectionsPerAddress: 2 } });
    await probe(g.port);
    await probe(g.port);
    expect(await probe(g.port)).toMatchObject({ closed: true, banner: '' });
    expect(g.logs.some((l) => l.event === 'connection_refused' && l.reason === 'max_connections_per_address')).toBe(true);
    // Linux routes all of 127/8 to loopback: another source address is another client.
    const other = await probe(g.port, '127.0.0.2');
    expect(other.banner).toMatch(/^SSH-2\.0-capstan/);
  });

  it('closes a connection that does not log in within login_grace_time, silent or not', async () => {
    const g = await gateway({ limits: { loginGraceMs: 300 } });
    const started = Date.now();
    const silent = probe(g.port);
    const talking = await probe(g.port);
    talking.socket.write('SSH-2.0-slowpoke\r\n');
    const closed = new Promise<void>((resolve) => talking.socket.once('close', () => resolve()));
    await closed;
    await new Promise<void>((resolve) =>
      silent.then(({ socket }) => (socket.destroyed ? resolve() : socket.once('close', () => resolve()))),
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(g.logs.some((l) => l.event === 'disconnecting' && l.reason === 'login grace time over')).toBe(true);
  });

  it('refuses a login past max_sessions_per_account; other accounts and later logins are fine', async () => {
    const g = await gateway({ limits: { maxSessionsPerAccount: 1 } });
    const first = await login(g);
    await expect(connectSsh2(g.port, 'alice', { privateKey: await readFile(g.keyFile) })).rejects.toThrow();
    expect(g.logs.some((l) => l.event === 'limit_reached' && l.limit === 'max_sessions_per_account' && l.user === 'alice')).toBe(true);
    await login(g, 'reader');
    first.end();
    await waitFor(() => g.logs.filter((l) => l.event === 'disconnect' && l.user === 'alice').length >= 1);
    const again = await login(g);
    await sftpOf(again);
  });

  it('answers FAILURE past max_handles, and announces the limit', async () => {
    const g = await gateway({ limits: { maxHandles: 3 } });
    const sftp = await sftpOf(await login(g));
    const opendir = () => new Promise<Buffer>((resolve, reject) => sftp.opendir('/', (err, h) => (err ? reject(err) : resolve(h))));
    const handles = [await opendir(), await opendir(), await opendir()];
    await expect(opendir()).rejects.toMatchObject({ code: 4, message: 'too many open handles' });
    await new Promise<void>((resolve, reject) => sftp.close(handles[0]!, (err) => (err ? reject(err) : resolve())));
    await opendir();
  });

  it('throttles a client that floods STATs without reading replies: bounded reads, other sessions unaffected', async () => {
    const g = await gateway({ limits: { maxPendingRequests: 64, maxOutputBacklog: 256 * 1024, stallTimeoutMs: 1500 } });
    const flooder = await login(g);
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      flooder.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    // INIT, then a million STAT "/" in 64 KiB writes; the replies are never read (no 'data' listener,
    // so the client stops widening the server's window once its buffer is full).
    channel.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
    const stat = (id: number) => {
      const b = Buffer.alloc(14);
      b.writeUInt32BE(10, 0);
      b[4] = 17;
      b.writeUInt32BE(id, 5);
      b.writeUInt32BE(1, 9);
      b[13] = 0x2f;
      return b;
    };
    const total = 1_000_000;
    const perWrite = 4096;
    for (let id = 1; id <= total; id += perWrite) {
      const n = Math.min(perWrite, total - id + 1);
      channel.write(Buffer.concat(Array.from({ length: n }, (_, i) => stat(id + i))));
    }
    await waitFor(() => g.logs.some((l) => l.event === 'throttled'));
    // Another client's session is answered at once.
    const other = await sftpOf(await login(g, 'reader'));
    const started = Date.now();
    await new Promise<void>((resolve, reject) => other.stat('/', (err) => (err ? reject(err) : resolve())));
    expect(Date.now() - started).toBeLessThan(2000);
    // Making no progress, the flooder is dropped after stall_timeout; what the gateway read of it
    // is bounded by its queues and windows, not by the 14 MB sent.
    await waitFor(() => g.logs.some((l) => l.event === 'disconnect' && l.user === 'alice'));
    expect(g.logs.some((l) => l.event === 'disconnecting' && String(l.reason).startsWith('stalled'))).toBe(true);
    const bytesIn = g.logs.find((l) => l.event === 'disconnect' && l.user === 'alice')!.bytesIn as number;
    expect(bytesIn).toBeLessThan(8 * 1024 * 1024);
  }, 60_000);

  it('drops a client whose unread replies keep its WRITE data in the memory budget, and the others go on', async () => {
    // Its queue never fills (max_pending_requests is high): only the budget's pressure holds everyone
    // back, and only the stall watch of a request waiting for the client to read can end it.
    const budget = new MemoryBudget(4 * 1024 * 1024);
    const limits = { maxPendingRequests: 500_000, maxOutputBacklog: 256 * 1024, stallTimeoutMs: 1500 };
    const g = await startGateway({ memory: budget, server: { limits } });
    gateways.push(g);
    const flooder = await login(g);
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      flooder.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch))),
    );
    channel.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
    // 120,000 STAT "/" (about 4 MB of replies, more than the SSH window and the backlog), never read…
    const stats = Buffer.alloc(14 * 120_000);
    for (let i = 0; i < 120_000; i++) {
      const at = i * 14;
      stats.writeUInt32BE(10, at);
      stats[at + 4] = 17;
      stats.writeUInt32BE(i + 1, at + 5);
      stats.writeUInt32BE(1, at + 9);
      stats[at + 13] = 0x2f;
    }
    channel.write(stats);
    // …then 3 MiB of WRITEs (to a handle that does not exist: queued behind the STATs, they are held all the same).
    const data = 255 * 1024;
    for (let i = 0; i < 12; i++) {
      const w = Buffer.alloc(4 + 1 + 4 + 4 + 1 + 8 + 4 + data);
      w.writeUInt32BE(w.length - 4, 0);
      w[4] = 6;
      w.writeUInt32BE(200_000 + i, 5);
      w.writeUInt32BE(1, 9);
      w[13] = 0x41;
      w.writeBigUInt64BE(BigInt(i * data), 14);
      w.writeUInt32BE(data, 22);
      channel.write(w);
    }
    await waitFor(() => budget.pressured);
    // Another client's upload waits while it lasts, then goes through whole.
    const sftp = await sftpOf(await login(g, 'alice'));
    const content = Buffer.alloc(3 * 1024 * 1024 + 5, 0x5a);
    await new Promise<void>((resolve, reject) => sftp.writeFile('/after-flood.bin', content, (err) => (err ? reject(err) : resolve())));
    expect(g.logs.some((l) => l.event === 'disconnecting' && String(l.reason).startsWith('stalled'))).toBe(true);
    const back = await new Promise<Buffer>((resolve, reject) =>
      sftp.readFile('/after-flood.bin', (err, b) => (err ? reject(err) : resolve(b))),
    );
    expect(back.equals(content)).toBe(true);
    expect(budget.highWater).toBeLessThanOrEqual(budget.limit);
    sessions.endAll();
    await waitFor(() => budget.used === 0);
  }, 60_000);

  it('holds the replies of clients that download without reading within the budget; another download goes through whole', async () => {
    const budget = new MemoryBudget(4 * 1024 * 1024);
    const g = await startGateway({ memory: budget, server: { limits: { stallTimeoutMs: 60_000 } } });
    gateways.push(g);
    const content = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < content.length; i += 4096) content.writeUInt32BE(i, i);
    const sftp = await sftpOf(await login(g));
    await new Promise<void>((resolve, reject) => sftp.writeFile('/big.bin', content, (err) => (err ? reject(err) : resolve())));
    // Four clients each ask for the whole file in 255 KiB READs and then stop reading their channel.
    const READ = 255 * 1024;
    for (let c = 0; c < 4; c++) {
      const client = await login(g);
      const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.subsys('sftp', (err, ch) => (err ? reject(err) : resolve(ch))),
      );
      const handle = await new Promise<Buffer>((resolve) => {
        let got = Buffer.alloc(0);
        const onData = (d: Buffer) => {
          got = Buffer.concat([got, d]);
          // VERSION, then HANDLE (type 102): keep its handle string and stop reading.
          let at = 0;
          while (at + 4 <= got.length && at + 4 + got.readUInt32BE(at) <= got.length) {
            if (got[at + 4] === 102) {
              channel.off('data', onData);
              channel.pause();
              resolve(got.subarray(at + 13, at + 13 + got.readUInt32BE(at + 9)));
              return;
            }
            at += 4 + got.readUInt32BE(at);
          }
        };
        channel.on('data', onData);
        channel.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
        const path = Buffer.from('/big.bin');
        const open = Buffer.alloc(4 + 1 + 4 + 4 + path.length + 4 + 4);
        open.writeUInt32BE(open.length - 4, 0);
        open[4] = 3;
        open.writeUInt32BE(1, 5);
        open.writeUInt32BE(path.length, 9);
        path.copy(open, 13);
        open.writeUInt32BE(1, 13 + path.length); // READ
        channel.write(open);
      });
      for (let i = 0; i < content.length / READ; i++) {
        const read = Buffer.alloc(4 + 1 + 4 + 4 + handle.length + 8 + 4);
        read.writeUInt32BE(read.length - 4, 0);
        read[4] = 5;
        read.writeUInt32BE(100 + i, 5);
        read.writeUInt32BE(handle.length, 9);
        handle.copy(read, 13);
        read.writeBigUInt64BE(BigInt(i * READ), 13 + handle.length);
        read.writeUInt32BE(READ, 21 + handle.length);
        channel.write(read);
      }
    }
    await waitFor(() => budget.replies > 0);
    // Each keeps at most its floor outside the budget; in it, replies never pass their share.
    const back = await new Promise<Buffer>((resolve, reject) => sftp.readFile('/big.bin', (err, b) => (err ? reject(err) : resolve(b))));
    expect(back.equals(content)).toBe(true);
    expect(budget.replies).toBeLessThanOrEqual(budget.repliesUpTo);
    expect(budget.highWater).toBeLessThanOrEqual(budget.limit);
    sessions.endAll();
    await waitFor(() => budget.used + budget.replies === 0);
  }, 60_000);

  it('caps what all open files cache together: 100 handles each reading four scattered chunks hold at most READ_CACHE_BYTES', async () => {
    const g = await startGateway({ chunkSize: 1 << 20 });
    gateways.push(g);
    const client = await login(g);
    const sftp = await sftpOf(client);
    const data = randomBytes(8 << 20);
    await call((cb) => sftp.writeFile('/scattered.bin', data, cb));
    const handles: Buffer[] = [];
    for (let i = 0; i < 100; i++) handles.push(await call<Buffer>((cb) => sftp.open('/scattered.bin', 'r', cb)));
    let most = 0;
    for (const [n, handle] of handles.entries()) {
      for (const chunk of [0, 2, 4, 6]) {
        const offset = (chunk << 20) + n;
        const got = Buffer.alloc(64);
        await call((cb) => sftp.read(handle, got, 0, 64, offset, cb));
        expect(got.equals(data.subarray(offset, offset + 64))).toBe(true);
        most = Math.max(most, readCache.bytes);
      }
    }
    // Without the shared bound, 100 × 4 chunks of 1 MiB stayed cached (400 MiB).
    expect(most).toBeGreaterThan(READ_CACHE_BYTES / 2);
    expect(most).toBeLessThanOrEqual(READ_CACHE_BYTES + (1 << 20) + 16);
    for (const handle of handles) await call((cb) => sftp.close(handle, cb));
    expect(readCache.bytes).toBe(0);
  }, 60_000);
});
