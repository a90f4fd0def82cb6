import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/errors.js';
import { LevelSlotStore } from '../../src/store/slots/level.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { SocketSlotStore } from '../../src/store/socket/client.js';
import { serveNodeStores, type NodeSocketServer } from '../../src/store/socket/server.js';
import { MAX_LINE } from '../../src/store/socket/protocol.js';
import type { SlotStore } from '../../src/store/slots/slot-store.js';
import { slotStoreConformance } from '../conformance/slot-store.js';

interface Served {
  dir: string;
  level: LevelSlotStore;
  server: NodeSocketServer;
}
const served = new WeakMap<SlotStore, Served>();
const socketOf = (s: Served) => path.join(s.dir, 'slots.sock');

slotStoreConformance('SocketSlotStore (served LevelSlotStore)', {
  history: true,
  setup: async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-socket-slots-'));
    const level = await LevelSlotStore.open(path.join(dir, 'db'));
    const server = await serveNodeStores({ slots: level }, path.join(dir, 'slots.sock'));
    const client = await SocketSlotStore.connect(path.join(dir, 'slots.sock'));
    served.set(client, { dir, level, server });
    return client;
  },
  teardown: async (client) => {
    const s = served.get(client)!;
    await client.close();
    await s.server.close();
    await s.level.close();
    await fsp.rm(s.dir, { recursive: true, force: true });
  },
  secondClient: (client) => SocketSlotStore.connect(socketOf(served.get(client)!)),
  reopen: async (client) => {
    await client.close();
    const reopened = await SocketSlotStore.connect(socketOf(served.get(client)!));
    served.set(reopened, served.get(client)!);
    return reopened;
  },
});

describe('slot store socket server and client', () => {
  let dir: string;
  let socketPath: string;
  const cleanups: Array<() => Promise<unknown>> = [];
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-socket-'));
    socketPath = path.join(dir, 'slots.sock');
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  async function serve(store: SlotStore = new MemorySlotStore()) {
    const server = await serveNodeStores({ slots: store }, socketPath);
    cleanups.push(() => server.close());
    return server;
  }
  async function client(options = {}) {
    const c = await SocketSlotStore.connect(socketPath, options);
    cleanups.push(() => c.close());
    return c;
  }
  /** Sends raw bytes on a fresh connection and resolves when the server closes it. */
  function sendRaw(data: string | Buffer): Promise<string> {
    return new Promise((resolve) => {
      const socket = net.connect(socketPath, () => socket.write(data));
      let received = '';
      socket.on('data', (chunk) => (received += chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(received));
    });
  }
  const si = new Uint8Array(32).fill(7);

  it('creates the socket file with mode 0600 and removes it on close', async () => {
    const server = await serve();
    expect((await fsp.stat(socketPath)).mode & 0o777).toBe(0o600);
    await server.close();
    await expect(fsp.lstat(socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('malformed input closes only that connection; the server and other clients carry on', async () => {
    await serve();
    const good = await client();
    await good.compareAndSwap(si, null, { seq: 1n, record: Uint8Array.of(1) });
    const junk = [
      'not json\n',
      '{"id":1,"op":"explode"}\n',
      '{"id":"x","op":"get","si":"00"}\n',
      `{"id":2,"op":"get","si":"${'zz'.repeat(32)}"}\n`,
      `{"id":3,"op":"cas","si":"${'00'.repeat(32)}","expected":"-1","seq":"1","record":""}\n`,
      'x'.repeat(MAX_LINE + 1024), // longer than any line may be, without its end
      Buffer.from([0xff, 0xfe, 0x00, 0x0a]),
    ];
    for (const data of junk) expect(await sendRaw(data)).toBe('');
    expect(await good.get(si)).toEqual({ seq: 1n, record: Uint8Array.of(1) });
    expect(await (await client()).get(si)).toEqual({ seq: 1n, record: Uint8Array.of(1) });
  });

  it('removes a stale socket file, but never a live socket or a file that is not a socket', async () => {
    const first = await serveNodeStores({ slots: new MemorySlotStore() }, socketPath);
    await expect(serveNodeStores({ slots: new MemorySlotStore() }, socketPath)).rejects.toMatchObject({ name: 'AlreadyExistsError' });
    // A hard link outlives the listener: the leftover of a gateway that was killed.
    const stale = path.join(dir, 'stale.sock');
    await fsp.link(socketPath, stale);
    await first.close();
    const second = await serveNodeStores({ slots: new MemorySlotStore() }, stale);
    cleanups.push(() => second.close());
    await expect((await SocketSlotStore.connect(stale)).get(si)).resolves.toBeUndefined();

    const regular = path.join(dir, 'regular');
    await fsp.writeFile(regular, 'keep me');
    await expect(serveNodeStores({ slots: new MemorySlotStore() }, regular)).rejects.toMatchObject({ name: 'InvalidInputError' });
    expect(await fsp.readFile(regular, 'utf8')).toBe('keep me');
  });

  it('no server is TransientError; a lost server fails calls with TransientError and the client redials', async () => {
    await expect(SocketSlotStore.connect(socketPath)).rejects.toMatchObject({ name: 'TransientError' });
    const store = new MemorySlotStore();
    const server = await serveNodeStores({ slots: store }, socketPath);
    const c = await client();
    await c.compareAndSwap(si, null, { seq: 1n, record: Uint8Array.of(1) });
    await server.close();
    await expect(c.get(si)).rejects.toMatchObject({ name: 'TransientError' });
    await serve(store);
    expect(await c.get(si)).toEqual({ seq: 1n, record: Uint8Array.of(1) });
  });

  it('IntegrityError crosses with its storage index; an untyped server failure is a plain Error', async () => {
    const faulty: SlotStore = {
      get: async (index) => {
        if (index[0] === 1) throw new IntegrityError('01'.repeat(32), 'slot');
        throw new TypeError('a bug in the store');
      },
      compareAndSwap: async () => undefined,
      list: async function* () {},
      close: async () => undefined,
    };
    await serve(faulty);
    const c = await client();
    const err = await c.get(new Uint8Array(32).fill(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err).toMatchObject({ storageIndex: '01'.repeat(32) });
    const bug = await c.get(si).catch((e: unknown) => e);
    expect(bug).toBeInstanceOf(Error);
    expect((bug as Error).name).toBe('Error');
    expect(await c.get(new Uint8Array(32).fill(1)).catch((e: unknown) => (e as Error).name)).toBe('IntegrityError');
  });

  it('a silent server is TransientError after the timeout; an abort while waiting is AbortError', async () => {
    const silent: SlotStore = {
      get: () => new Promise(() => undefined),
      compareAndSwap: () => new Promise(() => undefined),
      list: async function* () {},
      close: async () => undefined,
    };
    await serve(silent);
    const c = await client({ timeoutMs: 200 });
    await expect(c.get(si)).rejects.toMatchObject({ name: 'TransientError' });
    const controller = new AbortController();
    const pending = c.get(si, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('answers far more concurrent requests than one connection may run at once', async () => {
    await serve();
    const c = await client();
    const indexes = Array.from({ length: 300 }, (_, i) => new Uint8Array(32).fill(i % 256).map((b, j) => (j === 0 ? i >> 8 : b)));
    await Promise.all(indexes.map((index, i) => c.compareAndSwap(index, null, { seq: BigInt(i), record: Uint8Array.of(i & 255) })));
    const back = await Promise.all(indexes.map((index) => c.get(index)));
    for (const [i, entry] of back.entries()) expect(entry).toEqual({ seq: BigInt(i), record: Uint8Array.of(i & 255) });
  });
});
