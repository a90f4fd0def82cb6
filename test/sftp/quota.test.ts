import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type ssh2 from 'ssh2';
import { countTree, QuotaGuard, UsageBook } from '../../src/quota/index.js';
import type { AbortOptions } from '../../src/errors.js';
import { type ChunkAddress, ForwardingChunkStore } from '../../src/store/index.js';
import { Ssh2Sessions, startGateway, type Gateway, type GatewayOptions } from './gateway-fixture.js';

/**
 * Quotas through a real SFTP client (ssh2's): refusals at OPEN, WRITE and
 * CLOSE as FAILURE "quota exceeded", usage kept by deltas, the first count
 * by a walk, counters persisted, the quotas file re-read while running.
 */

const gateways: Gateway[] = [];
const sessions = new Ssh2Sessions();
const guards: QuotaGuard[] = [];
afterEach(async () => {
  sessions.endAll();
  // Sessions first, then the last usage write, then the directory goes.
  for (const g of gateways) await g.server.close(2000);
  for (const q of guards.splice(0)) await q.close();
  for (const g of gateways.splice(0)) await g.close();
});

interface QuotaGateway {
  g: Gateway;
  guard: QuotaGuard;
  quotasFile: string;
  usageFile: string;
}

/** Puts that take a while: uploads closing at once then all check their quota before any of them links. */
class SlowPuts extends ForwardingChunkStore {
  override async put(bytes: Uint8Array, options?: AbortOptions): Promise<ChunkAddress> {
    await new Promise((r) => setTimeout(r, 40)); // fault injection (a slow store), not synchronisation
    return super.put(bytes, options);
  }
}

async function gateway(quotas: string, options: Partial<GatewayOptions> = {}): Promise<QuotaGateway> {
  let guard: QuotaGuard | undefined;
  let quotasFile = '';
  let usageFile = '';
  const g = await startGateway({
    ...options,
    server: async (tree, dir) => {
      quotasFile = join(dir, 'quotas');
      usageFile = join(dir, 'usage.json');
      if (quotas !== '') await writeFile(quotasFile, quotas);
      guard = await QuotaGuard.open({
        quotasFile,
        usageFile,
        usage: await UsageBook.open(usageFile, { flushMs: 10 }),
        tree,
        logger: (await import('../../src/log.js')).silentLogger(),
        reloadMs: 0,
      });
      return { quota: guard };
    },
  });
  gateways.push(g);
  guards.push(guard!);
  return { g, guard: guard!, quotasFile, usageFile };
}

async function session(g: Gateway): Promise<ssh2.SFTPWrapper> {
  return (await sessions.open(g.port, 'alice', { password: g.password })).sftp;
}

const put = (sftp: ssh2.SFTPWrapper, path: string, size: number) =>
  new Promise<void>((resolve, reject) => sftp.writeFile(path, Buffer.alloc(size, 7), (err) => (err ? reject(err) : resolve())));
const rm = (sftp: ssh2.SFTPWrapper, path: string) =>
  new Promise<void>((resolve, reject) => sftp.unlink(path, (err) => (err ? reject(err) : resolve())));
const open = (sftp: ssh2.SFTPWrapper, path: string, flags: ssh2.OpenMode) =>
  new Promise<Buffer>((resolve, reject) => sftp.open(path, flags, (err, h) => (err ? reject(err) : resolve(h))));
const write = (sftp: ssh2.SFTPWrapper, h: Buffer, data: Buffer, pos: number) =>
  new Promise<void>((resolve, reject) => sftp.write(h, data, 0, data.length, pos, (err) => (err ? reject(err) : resolve())));
const close = (sftp: ssh2.SFTPWrapper, h: Buffer) =>
  new Promise<void>((resolve, reject) => sftp.close(h, (err) => (err ? reject(err) : resolve())));
const exists = (sftp: ssh2.SFTPWrapper, path: string) => new Promise<boolean>((resolve) => sftp.stat(path, (err) => resolve(!err)));

/**
 * A symbolic link `link` → `target`. ssh2 sends SYMLINK in the draft's order (link path first) to a
 * server that does not call itself OpenSSH; capstan reads OpenSSH's order (target first), so the
 * arguments go in swapped to land as meant.
 */
const ln = (sftp: ssh2.SFTPWrapper, link: string, target: string) =>
  new Promise<void>((resolve, reject) => sftp.symlink(link, target, (err) => (err ? reject(err) : resolve())));

const QUOTA_EXCEEDED = { code: 4, message: 'quota exceeded' };

describe('quotas over SFTP', () => {
  it('refuses the write that would pass the byte quota; overwrites count the replaced file as freed', async () => {
    const { g, guard } = await gateway('alice bytes=100K\n');
    const sftp = await session(g);
    await put(sftp, '/a', 60 * 1024);
    await expect(put(sftp, '/b', 60 * 1024)).rejects.toMatchObject(QUOTA_EXCEEDED);
    // The refused upload is dropped whole: nothing is linked under the new name.
    expect(await exists(sftp, '/b')).toBe(false);
    await expect(guard.usageOf('alice', g.root)).resolves.toMatchObject({ bytes: 60 * 1024, files: 1 });
    await put(sftp, '/a', 90 * 1024); // replaces 60K: 90K in use
    await expect(guard.usageOf('alice', g.root)).resolves.toMatchObject({ bytes: 90 * 1024, files: 1 });
    await rm(sftp, '/a');
    await put(sftp, '/c', 100 * 1024);
    // At the quota: no new upload may even open.
    await expect(open(sftp, '/d', 'w')).rejects.toMatchObject(QUOTA_EXCEEDED);
  });

  it('out-of-order writes within the quota commit; a write past it drops the upload', async () => {
    const { g } = await gateway('alice bytes=64K\n');
    const sftp = await session(g);
    const h = await open(sftp, '/sparse', 'w');
    await write(sftp, h, Buffer.alloc(1024, 1), 0);
    await write(sftp, h, Buffer.alloc(1024, 1), 10 * 1024); // out of order: spooled
    await close(sftp, h);
    expect(await exists(sftp, '/sparse')).toBe(true);
    // A write past the quota drops that upload: its CLOSE fails and links nothing.
    const h2 = await open(sftp, '/sparse2', 'w');
    await write(sftp, h2, Buffer.alloc(1024, 1), 0);
    await expect(write(sftp, h2, Buffer.alloc(1024, 1), 100 * 1024)).rejects.toMatchObject(QUOTA_EXCEEDED);
    await expect(write(sftp, h2, Buffer.alloc(1024, 1), 2048)).rejects.toMatchObject({ code: 4 });
    await expect(close(sftp, h2)).rejects.toMatchObject({ code: 4 });
    expect(await exists(sftp, '/sparse2')).toBe(false);
  });

  it('refuses a new file past the file quota, not an overwrite', async () => {
    const { g } = await gateway('alice files=2\n');
    const sftp = await session(g);
    await put(sftp, '/1', 10);
    await put(sftp, '/2', 10);
    await expect(put(sftp, '/3', 10)).rejects.toMatchObject(QUOTA_EXCEEDED);
    await put(sftp, '/2', 20);
    await rm(sftp, '/1');
    await put(sftp, '/3', 10);
  });

  it('a symbolic link costs one entry and no bytes', async () => {
    const { g } = await gateway('alice files=2 bytes=10\n');
    const sftp = await session(g);
    await put(sftp, '/1', 10);
    await ln(sftp, '/l', '1'); // the byte quota is full: a link needs none
    await expect(ln(sftp, '/l2', '1')).rejects.toMatchObject(QUOTA_EXCEEDED);
    await rm(sftp, '/l');
    expect(await exists(sftp, '/1')).toBe(true);
    await ln(sftp, '/l3', '1');
  });

  it('counts an existing tree by a walk when a quota is set while running, and persists the counters', async () => {
    const { g, quotasFile, usageFile, guard } = await gateway('');
    const sftp = await session(g);
    await new Promise<void>((resolve, reject) => sftp.mkdir('/sub', (err) => (err ? reject(err) : resolve())));
    await put(sftp, '/x', 3000);
    await put(sftp, '/sub/y', 5000);
    await writeFile(quotasFile, 'alice bytes=10000 files=100\n');
    await expect(put(sftp, '/sub/z', 3000)).rejects.toMatchObject(QUOTA_EXCEEDED); // 8000 + 3000 > 10000
    await put(sftp, '/sub/z', 2000);
    await guard.close();
    const saved = JSON.parse(await readFile(usageFile, 'utf8')) as { users: Record<string, { bytes: number; files: number }> };
    expect(saved.users.alice).toMatchObject({ bytes: 10_000, files: 3 });
    // Raising the quota takes effect without a restart.
    await writeFile(quotasFile, 'alice bytes=20000\n');
    // The guard sees an edit by the file's modification time: make it differ from the last edit's, whatever the clock's grain.
    const edited = new Date((await stat(quotasFile)).mtimeMs + 2000);
    await utimes(quotasFile, edited, edited);
    await put(sftp, '/w', 5000);
  });

  it('leaves accounts without a quota alone', async () => {
    const { g, usageFile } = await gateway('bob bytes=1\n');
    const sftp = await session(g);
    await put(sftp, '/big', 200 * 1024);
    // Proving that nothing happens needs time to pass: 50 ms is five flush periods of the usage book (flushMs 10).
    await new Promise((r) => setTimeout(r, 50));
    await expect(readFile(usageFile, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('counts every change from what its own update replaced: renames over names, hardlinks, links, truncation, moves', async () => {
    const { g, guard } = await gateway('alice bytes=1G files=1000\n');
    const sftp = await session(g);
    const call = (f: (cb: (err?: Error | null) => void) => void) =>
      new Promise<void>((resolve, reject) => f((err) => (err ? reject(err) : resolve())));
    // After every step the counters equal a fresh walk of the tree: no drift, nothing to recount.
    const agrees = async (step: string) => {
      const counted = await countTree(g.tree, g.root);
      expect({ step, ...(await guard.usageOf('alice', g.root)) }).toMatchObject({ step, ...counted });
    };
    await put(sftp, '/a', 10_000);
    await put(sftp, '/b', 20_000);
    await agrees('two uploads');
    await call((cb) => sftp.ext_openssh_rename('/a', '/b', cb));
    await agrees('posix-rename over a file');
    await call((cb) => sftp.ext_openssh_hardlink('/b', '/c', cb));
    await agrees('hardlink');
    await ln(sftp, '/l', 'c');
    await agrees('symbolic link');
    await call((cb) => sftp.setstat('/c', { size: 3000 }, cb));
    await agrees('SETSTAT size down');
    await call((cb) => sftp.setstat('/b', { size: 50_000 }, cb));
    await agrees('SETSTAT size up');
    await call((cb) => sftp.mkdir('/d', cb));
    await put(sftp, '/d/e', 5000);
    await call((cb) => sftp.rename('/c', '/d/c', cb));
    await agrees('move across directories');
    await call((cb) => sftp.ext_openssh_rename('/b', '/d/e', cb));
    await agrees('move across directories over a file');
    await call((cb) => sftp.ext_openssh_rename('/l', '/d/c', cb));
    await agrees('a link renamed over a file');
    await call((cb) => sftp.rename('/d', '/d2', cb));
    await put(sftp, '/d2/e', 1);
    await agrees('directory renamed, then an overwrite in it');
    await rm(sftp, '/d2/c');
    await rm(sftp, '/d2/e');
    await agrees('removes');
    expect(await guard.usageOf('alice', g.root)).toMatchObject({ bytes: 0, files: 0 });
  });

  it('a hardlink or a truncation that would pass the quota is refused and changes nothing', async () => {
    const { g, guard } = await gateway('alice bytes=100K files=10\n');
    const sftp = await session(g);
    const call = (f: (cb: (err?: Error | null) => void) => void) =>
      new Promise<void>((resolve, reject) => f((err) => (err ? reject(err) : resolve())));
    await put(sftp, '/a', 60 * 1024);
    await expect(call((cb) => sftp.ext_openssh_hardlink('/a', '/b', cb))).rejects.toMatchObject(QUOTA_EXCEEDED);
    expect(await exists(sftp, '/b')).toBe(false);
    await expect(call((cb) => sftp.setstat('/a', { size: 101 * 1024 }, cb))).rejects.toMatchObject(QUOTA_EXCEEDED);
    expect((await g.tree.directory(g.root).lookup('a'))?.metadata.size).toBe(60 * 1024);
    await expect(guard.usageOf('alice', g.root)).resolves.toMatchObject({ bytes: 60 * 1024, files: 1 });
  });

  it('a truncate of an open upload past the quota is refused at once and keeps the upload as it was', async () => {
    const { g, guard } = await gateway('alice bytes=100K\n');
    const sftp = await session(g);
    const fsetstat = (h: Buffer, size: number) =>
      new Promise<void>((resolve, reject) => sftp.fsetstat(h, { size }, (err) => (err ? reject(err) : resolve())));
    const h = await open(sftp, '/grown', 'w');
    await write(sftp, h, Buffer.alloc(1024, 1), 0);
    await expect(fsetstat(h, 1024 ** 3)).rejects.toMatchObject(QUOTA_EXCEEDED);
    await fsetstat(h, 50 * 1024); // within the quota: still the same upload
    await write(sftp, h, Buffer.alloc(1024, 2), 2048);
    await close(sftp, h);
    const content = await new Promise<Buffer>((resolve, reject) => sftp.readFile('/grown', (err, b) => (err ? reject(err) : resolve(b))));
    const expected = Buffer.alloc(50 * 1024);
    expected.fill(1, 0, 1024);
    expected.fill(2, 2048, 3072);
    expect(content.equals(expected)).toBe(true);
    await expect(guard.usageOf('alice', g.root)).resolves.toMatchObject({ bytes: 50 * 1024, files: 1 });
  });

  it('uploads closing at once in many sessions never pass the quota together', async () => {
    const { g, guard } = await gateway('alice bytes=100K\n', { wrapChunks: (store) => new SlowPuts(store) });
    const clients = await Promise.all(Array.from({ length: 8 }, () => session(g)));
    // Every upload opens and writes while nothing is committed, so each alone fits; only the CLOSEs race.
    const handles = await Promise.all(clients.map((sftp, i) => open(sftp, `/f${i}`, 'w')));
    await Promise.all(clients.map((sftp, i) => write(sftp, handles[i] as Buffer, Buffer.alloc(30 * 1024, i), 0)));
    const closed = await Promise.allSettled(clients.map((sftp, i) => close(sftp, handles[i] as Buffer)));
    const acknowledged = closed.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(acknowledged).toHaveLength(3);
    for (const r of closed) if (r.status === 'rejected') expect(r.reason).toMatchObject(QUOTA_EXCEEDED);
    // Acknowledged ⇒ present, byte-identical; refused ⇒ absent.
    for (let i = 0; i < clients.length; i++) {
      const entry = await g.tree.directory(g.root).lookup(`f${i}`);
      if (!acknowledged.includes(i)) expect(entry).toBeUndefined();
      else {
        const body = await new Promise<Buffer>((resolve, reject) =>
          (clients[i] as ssh2.SFTPWrapper).readFile(`/f${i}`, (err, b) => (err ? reject(err) : resolve(b))),
        );
        expect(body.equals(Buffer.alloc(30 * 1024, i))).toBe(true);
      }
    }
    expect(await guard.usageOf('alice', g.root)).toMatchObject(await countTree(g.tree, g.root));
  });
});
