import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { AlreadyExistsError, InvalidInputError, isCapstanError } from '../../errors.js';
import type { Logger } from '../../log.js';
import {
  LIST_PAGE,
  LineSplitter,
  encodeEntry,
  encodePin,
  encodeError,
  fromBase64,
  fromHex,
  parseRequest,
  toBase64,
  toHex,
  type Request,
  type Response,
} from './protocol.js';
import type { SlotHistory, SlotStore } from '../slots/slot-store.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import { parseAddress } from '../address.js';

/** Requests one connection may have running at once; past this we stop reading its socket. */
const MAX_IN_FLIGHT = 16;
/** Request bytes (chunk puts) one connection may have running at once, likewise. */
const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** list cursors one connection may hold open. */
const MAX_OPEN_LISTS = 4;
const MAX_CONNECTIONS = 64;

/** What the socket serves: the slot store, and the chunk store of an engine whose journal only this process may write. */
export interface NodeStores {
  slots: SlotStore;
  chunks?: ChunkStore | undefined;
}

export interface NodeSocketServer {
  /** Stops listening, drops every connection (their pending calls are aborted) and removes the socket file. Does not close the store. */
  close(): Promise<void>;
}

export interface ServeNodeStoresOptions {
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
export async function serveNodeStores(
  stores: NodeStores,
  socketPath: string,
  options: ServeNodeStoresOptions = {},
): Promise<NodeSocketServer> {
  await removeStaleSocket(socketPath);
  const connections = new Set<net.Socket>();
  const server = net.createServer((socket) => serveConnection(stores, socket, connections, options.logger));
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

function serveConnection(stores: NodeStores, socket: net.Socket, connections: Set<net.Socket>, log?: Logger): void {
  const store = stores.slots;
  const chunks = (): ChunkStore => {
    if (stores.chunks === undefined) throw new InvalidInputError('this server serves no chunk store');
    return stores.chunks;
  };
  const history = (): SlotHistory => {
    if (store.history === undefined) throw new InvalidInputError('this slot store keeps no history for snapshots');
    return store.history;
  };
  connections.add(socket);
  // Aborts this connection's store calls (a swap queued on a lock, a list) once it is gone.
  const gone = new AbortController();
  const signal = gone.signal;
  const lists = new Map<number, AsyncIterator<string>>();
  const splitter = new LineSplitter();
  // Lines already read but not started: at most one socket read's worth, since we pause before reading more.
  const queue: string[] = [];
  let nextCursor = 1;
  let inFlight = 0;
  let inFlightBytes = 0;

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
    while (!socket.destroyed && queue.length > 0 && inFlight < MAX_IN_FLIGHT && inFlightBytes < MAX_IN_FLIGHT_BYTES) {
      const line = queue.shift()!;
      const request = parseRequest(line);
      if (request === undefined) {
        drop('malformed request');
        return;
      }
      inFlight += 1;
      inFlightBytes += line.length;
      void answer(request).then((response) => {
        inFlight -= 1;
        inFlightBytes -= line.length;
        if (socket.destroyed) return;
        socket.write(JSON.stringify(response) + '\n');
        pump();
      });
    }
    if (socket.destroyed) return;
    if (queue.length > 0 || inFlight >= MAX_IN_FLIGHT || inFlightBytes >= MAX_IN_FLIGHT_BYTES || socket.writableNeedDrain) socket.pause();
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
        return listPage(request.cursor, () => iterate(store.list({ signal }), toHex));
      case 'pins':
        return listPage(request.cursor, () =>
          iterate(history().pins(request.si === undefined ? undefined : fromHex(request.si), { signal }), encodePin),
        );
      case 'pin':
        return { pin: encodePin(await history().pin(fromHex(request.si), request.createdMs, { signal })) };
      case 'unpin':
        return { removed: await history().unpin(fromHex(request.si), BigInt(request.epoch), { signal }) };
      case 'history-prune':
        return { pruned: await history().prune({ signal }) };
      case 'get-at': {
        const entry = await history().getAt(fromHex(request.si), BigInt(request.epoch), { signal });
        return { entry: entry === undefined ? null : encodeEntry(entry) };
      }
      case 'chunk-list':
        return listPage(request.cursor, () => iterate(chunks().list({ signal }), (a) => a.toString()));
      case 'chunk-put':
        return { address: (await chunks().put(fromBase64(request.bytes), { signal })).toString() };
      case 'chunk-get':
        return { bytes: toBase64(await chunks().get(parseAddress(request.address), { signal })) };
      case 'chunk-has':
        return { has: await chunks().has(parseAddress(request.address), { signal }) };
      case 'chunk-stat': {
        const stat = await chunks().stat?.(parseAddress(request.address), { signal });
        return { stat: stat ?? null };
      }
      case 'chunk-flush':
        await chunks().flush?.({ signal });
        return {};
      case 'chunk-delete':
        await chunks().delete(parseAddress(request.address), { signal });
        return {};
      case 'chunk-delete-idle': {
        const store = chunks();
        if (store.deleteIfIdleSince === undefined) throw new InvalidInputError('this chunk store cannot tell chunk ages');
        return { freed: (await store.deleteIfIdleSince(parseAddress(request.address), request.cutoffMs, { signal })) ?? null };
      }
      case 'chunk-compact': {
        const store = chunks();
        const compact = (await store.compact?.({ signal, dryRun: request.dryRun, threshold: request.threshold })) ?? {
          rewritten: 0,
          removed: 0,
          copiedBytes: 0,
          freedBytes: 0,
        };
        return { compact };
      }
      case 'chunk-repack': {
        const repack = (await chunks().repack?.({ signal, dryRun: request.dryRun, limit: request.limit })) ?? {
          moved: 0,
          movedBytes: 0,
          dropped: 0,
          skipped: 0,
          damaged: 0,
        };
        return { repack };
      }
      case 'chunk-usage': {
        const usage = await chunks().usage?.({ signal });
        if (usage === undefined) throw new InvalidInputError('this chunk store cannot tell its usage');
        return { usage };
      }
      case 'list-close': {
        const list = lists.get(request.cursor);
        lists.delete(request.cursor);
        await list?.return?.();
        return {};
      }
    }
  }

  async function listPage(cursor: number | undefined, open: () => AsyncIterator<string>): Promise<{ keys: string[]; cursor?: number }> {
    let list: AsyncIterator<string> | undefined;
    if (cursor === undefined) {
      if (lists.size >= MAX_OPEN_LISTS) throw new InvalidInputError('too many open lists on this connection');
      list = open();
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
      keys.push(step.value);
    }
    return { keys, cursor };
  }
}

/** An iterator of `source`'s items as strings. */
async function* iterate<T>(source: AsyncIterable<T>, show: (item: T) => string): AsyncGenerator<string> {
  for await (const item of source) yield show(item);
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
