import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { AlreadyExistsError, InvalidInputError, TransientError, isCapstanError } from '../errors.js';
import type { Logger } from '../log.js';
import { LevelSlotStore, isLevelLocked } from './level-slot-store.js';
import {
  LIST_PAGE,
  LineSplitter,
  encodeEntry,
  encodeError,
  fromBase64,
  fromHex,
  parseRequest,
  toHex,
  type Request,
  type Response,
} from './slot-socket-protocol.js';
import type { SlotStore } from './slot-store.js';
import { SocketSlotStore, type SocketSlotStoreOptions } from './socket-slot-store.js';

export { SocketSlotStore, type SocketSlotStoreOptions } from './socket-slot-store.js';

/** Requests one connection may have running at once; past this we stop reading its socket. */
const MAX_IN_FLIGHT = 16;
/** list cursors one connection may hold open. */
const MAX_OPEN_LISTS = 4;
const MAX_CONNECTIONS = 64;

export interface SlotStoreServer {
  /** Stops listening, drops every connection (their pending calls are aborted) and removes the socket file. Does not close the store. */
  close(): Promise<void>;
}

export interface ServeSlotStoreOptions {
  logger?: Logger;
}

/**
 * Serves `store` on a unix-domain socket at `socketPath` (protocol in
 * slot-socket-protocol.ts), so that other processes on this node can use the
 * slot database the gateway holds open.
 *
 * The socket file is created with mode 0600; anyone who can connect can
 * rewrite every slot, so the node directory holding it must be private too.
 * A leftover socket file nobody answers on is removed first; one that answers
 * means another server is live (AlreadyExistsError), and a non-socket file at
 * the path is never deleted (InvalidInputError).
 *
 * One misbehaving client costs only its own connection: a malformed or
 * over-long line closes it, and each connection's work is bounded by
 * MAX_IN_FLIGHT requests (then its socket is paused, so TCP-style
 * backpressure reaches the client) and MAX_OPEN_LISTS cursors.
 */
export async function serveSlotStore(store: SlotStore, socketPath: string, options: ServeSlotStoreOptions = {}): Promise<SlotStoreServer> {
  await removeStaleSocket(socketPath);
  const connections = new Set<net.Socket>();
  const server = net.createServer((socket) => serveConnection(store, socket, connections, options.logger));
  server.maxConnections = MAX_CONNECTIONS;
  await listenPrivately(server, socketPath);
  // After listen, a server error (accept failing for want of descriptors, say)
  // must not take the gateway down with it: log it and keep serving.
  server.on('error', (err) => options.logger?.error({ err }, 'slot store socket server error'));

  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        // libuv unlinks the socket file when the listening handle closes.
        server.close(() => resolve());
        for (const socket of connections) socket.destroy();
      })),
  };
}

function serveConnection(store: SlotStore, socket: net.Socket, connections: Set<net.Socket>, log?: Logger): void {
  connections.add(socket);
  // Aborts this connection's store calls (a swap queued on a lock, a list) once it is gone.
  const gone = new AbortController();
  const signal = gone.signal;
  const lists = new Map<number, AsyncIterator<Uint8Array>>();
  const splitter = new LineSplitter();
  // Lines already read but not started: at most one socket read's worth, since we pause before reading more.
  const queue: string[] = [];
  let nextCursor = 1;
  let inFlight = 0;

  const drop = (reason: string) => {
    if (!signal.aborted) log?.warn({ reason }, 'closing a slot store socket connection');
    socket.destroy();
  };

  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    try {
      queue.push(...splitter.push(chunk));
    } catch {
      return drop('over-long line');
    }
    pump();
  });
  socket.on('drain', pump);
  socket.on('error', () => undefined); // 'close' follows
  socket.on('close', () => {
    connections.delete(socket);
    gone.abort();
    queue.length = 0;
    for (const list of lists.values()) list.return?.().catch(() => undefined);
    lists.clear();
  });

  function pump(): void {
    while (!socket.destroyed && queue.length > 0 && inFlight < MAX_IN_FLIGHT) {
      const request = parseRequest(queue.shift()!);
      if (request === undefined) {
        drop('malformed request');
        return;
      }
      inFlight += 1;
      void answer(request).then((response) => {
        inFlight -= 1;
        if (socket.destroyed) return;
        socket.write(JSON.stringify(response) + '\n');
        pump();
      });
    }
    if (socket.destroyed) return;
    if (queue.length > 0 || inFlight >= MAX_IN_FLIGHT || socket.writableNeedDrain) socket.pause();
    else socket.resume();
  }

  async function answer(request: Request): Promise<Response> {
    try {
      return { id: request.id, ok: true, ...(await dispatch(request)) };
    } catch (err) {
      if (!isCapstanError(err)) log?.error({ err }, 'slot store failed serving a socket request');
      return { id: request.id, ok: false, error: encodeError(err) };
    }
  }

  async function dispatch(request: Request): Promise<Omit<Extract<Response, { ok: true }>, 'id' | 'ok'>> {
    switch (request.op) {
      case 'get': {
        const entry = await store.get(fromHex(request.si), { signal });
        return { entry: entry === undefined ? null : encodeEntry(entry) };
      }
      case 'cas': {
        const expected = request.expected === null ? null : BigInt(request.expected);
        const next = { seq: BigInt(request.seq), record: fromBase64(request.record) };
        await store.compareAndSwap(fromHex(request.si), expected, next, { signal });
        return {};
      }
      case 'list':
        return listPage(request.cursor);
      case 'list-close': {
        const list = lists.get(request.cursor);
        lists.delete(request.cursor);
        await list?.return?.();
        return {};
      }
    }
  }

  async function listPage(cursor: number | undefined): Promise<{ keys: string[]; cursor?: number }> {
    let list: AsyncIterator<Uint8Array> | undefined;
    if (cursor === undefined) {
      if (lists.size >= MAX_OPEN_LISTS) throw new InvalidInputError('too many open lists on this connection');
      list = store.list({ signal })[Symbol.asyncIterator]();
      cursor = nextCursor++;
      lists.set(cursor, list);
    } else {
      list = lists.get(cursor);
      if (list === undefined) throw new InvalidInputError('no such list cursor');
    }
    const keys: string[] = [];
    while (keys.length < LIST_PAGE) {
      const step = await list.next();
      if (step.done) {
        lists.delete(cursor);
        return { keys };
      }
      keys.push(toHex(step.value));
    }
    return { keys, cursor };
  }
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  let stat: import('node:fs').Stats;
  try {
    stat = await fsp.lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) throw new InvalidInputError(`${socketPath} exists and is not a socket; not removing it`);
  if (await answers(socketPath)) throw new AlreadyExistsError(`a server already listens on ${socketPath}`);
  await fsp.rm(socketPath, { force: true });
}

/** Whether something accepts connections on the socket; a second's silence counts as yes (never steal a live socket). */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    const done = (answer: boolean) => {
      probe.destroy();
      resolve(answer);
    };
    probe.setTimeout(1_000, () => done(true));
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
  });
}

/**
 * listen() with the socket file born 0600. bind() runs synchronously inside
 * listen(), so narrowing the umask around that one call leaves no window in
 * which another user could connect; the chmod after is for processes where
 * the umask cannot be changed (worker threads).
 */
async function listenPrivately(server: net.Server, socketPath: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    let previous: number | undefined;
    try {
      previous = process.umask(0o177);
    } catch {
      previous = undefined;
    }
    try {
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
  });
  await fsp.chmod(socketPath, 0o600);
}

/**
 * The node's slot store, wherever it is: the LevelDB in `dbDir` if this
 * process can open it (`shared: false`), otherwise, when another process
 * holds its lock (normally a running gateway), a SocketSlotStore on
 * `socketPath` (`shared: true`). Locked with nobody answering on the socket
 * (another CLI command has it, or the gateway is still starting) is a
 * TransientError: try again shortly.
 */
export async function openSharedSlotStore(
  dbDir: string,
  socketPath: string,
  options: SocketSlotStoreOptions = {},
): Promise<{ store: SlotStore; shared: boolean }> {
  try {
    return { store: await LevelSlotStore.open(dbDir), shared: false };
  } catch (err) {
    if (!isLevelLocked(err)) throw err;
    try {
      return { store: await SocketSlotStore.connect(socketPath, options), shared: true };
    } catch (connectErr) {
      throw new TransientError(`the slot database is held by another process and no gateway answers on ${socketPath}`, {
        cause: connectErr,
      });
    }
  }
}
