import net from 'node:net';
import { AbortError, InvalidInputError, TransientError, throwIfAborted, type AbortOptions } from '../../errors.js';
import { checkCreatedMs, checkEpoch, checkStorageIndex, checkSwap } from '../slots/slot-limits.js';
import {
  LineSplitter,
  decodeEntry,
  decodePin,
  decodeError,
  fromBase64,
  fromHex,
  isHexIndex,
  toBase64,
  toHex,
  type Request,
  type Response,
} from './protocol.js';
import type { SlotEntry, SlotHistory, SlotStore, SnapshotPin } from '../slots/slot-store.js';
import { addressOf, assertChunkAddress, MAX_CHUNK_BYTES, parseAddress, verifyChunk } from '../address.js';
import type {
  ChunkAddress,
  ChunkStat,
  ChunkStore,
  ChunkStoreFeatures,
  CompactOptions,
  CompactResult,
  RepackOptions,
  RepackResult,
} from '../chunks/chunk-store.js';

export interface SocketSlotStoreOptions {
  /**
   * How long a request may wait for its answer before it fails with
   * TransientError (default 30 s). A compareAndSwap that times out may still
   * have been applied: re-read before retrying, as after any TransientError.
   */
  timeoutMs?: number;
}

type Ok = Extract<Response, { ok: true }>;
/** Omit applied to each member of a union, not to the union as a whole. */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A request before the connection numbers it. */
type RequestBody = OmitEach<Request, 'id'>;

interface Pending {
  resolve(response: Ok): void;
  reject(err: Error): void;
}

/** One socket to the server, with the requests waiting on it. */
class Connection {
  private readonly pending = new Map<number, Pending>();
  private readonly lines = new LineSplitter();
  private nextId = 1;
  dead = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', () => undefined); // 'close' follows and fails what is pending
    socket.on('close', () => this.fail('the connection to the node store server closed'));
  }

  static open(socketPath: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new Connection(socket));
      });
      const onError = (err: Error) => reject(new TransientError(`no slot store server answers on ${socketPath}`, { cause: err }));
      socket.once('error', onError);
    });
  }

  send(body: RequestBody, pending: Pending): number {
    const id = this.nextId++;
    if (this.dead) {
      pending.reject(new TransientError('the connection to the slot store server closed'));
      return id;
    }
    this.pending.set(id, pending);
    this.socket.write(JSON.stringify({ ...body, id }) + '\n');
    return id;
  }

  /** Stops waiting for `id` (aborted or timed out); a late answer is dropped. */
  forget(id: number): void {
    this.pending.delete(id);
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    let lines: string[];
    try {
      lines = this.lines.push(chunk);
    } catch {
      this.fail('the slot store server sent an over-long line');
      return;
    }
    for (const line of lines) {
      let response: Response;
      try {
        response = JSON.parse(line);
      } catch {
        this.fail('the slot store server sent a malformed line');
        return;
      }
      const waiting = this.pending.get(response?.id);
      if (waiting === undefined) continue;
      this.pending.delete(response.id);
      if (response.ok === true) waiting.resolve(response);
      else waiting.reject(decodeError(response.error));
    }
  }

  private fail(reason: string): void {
    this.dead = true;
    this.socket.destroy();
    for (const waiting of this.pending.values()) waiting.reject(new TransientError(reason));
    this.pending.clear();
  }
}

/**
 * One client of the node socket (server.ts): the connection the socket
 * stores below share. A lost connection fails what waits on it with
 * TransientError, and the next call dials again. Every request has a
 * timeout; an abort stops waiting (a swap or put may still happen: re-read
 * before retrying, as after any TransientError).
 */
export class SocketClient {
  private connection?: Promise<Connection>;
  private closed = false;

  private constructor(
    readonly socketPath: string,
    private readonly timeoutMs: number,
  ) {}

  /** Connects now, so a missing server is reported here (TransientError) rather than on first use. */
  static async connect(socketPath: string, options: SocketSlotStoreOptions = {}): Promise<SocketClient> {
    const client = new SocketClient(socketPath, options.timeoutMs ?? 30_000);
    await client.dial();
    return client;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = await this.connection?.catch(() => undefined);
    connection?.close();
  }

  private dial(): Promise<Connection> {
    const dialing = Connection.open(this.socketPath);
    this.connection = dialing;
    dialing.catch(() => {
      if (this.connection === dialing) delete this.connection;
    });
    return dialing;
  }

  async request(body: RequestBody, signal?: AbortSignal): Promise<Ok> {
    throwIfAborted(signal);
    if (this.closed) throw new Error('node socket client used after close()');
    let connection = await (this.connection ?? this.dial());
    if (connection.dead) connection = await this.dial();
    throwIfAborted(signal);
    return new Promise<Ok>((resolve, reject) => {
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => {
        connection.forget(id);
        settle(() => reject(new AbortError()));
      };
      const timer = setTimeout(() => {
        connection.forget(id);
        settle(() => reject(new TransientError('the node store server did not answer in time')));
      }, this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const id = connection.send(body, {
        resolve: (response) => settle(() => resolve(response)),
        reject: (err) => settle(() => reject(err)),
      });
    });
  }

  /** Pages of a server-side list, one request a page; abandoned early, the server drops its cursor. */
  async *pages(op: 'list' | 'chunk-list' | 'pins', signal?: AbortSignal, si?: string): AsyncGenerator<string> {
    let page = await this.request(op === 'pins' && si !== undefined ? { op, si } : { op }, signal);
    let cursor = page.cursor;
    try {
      for (;;) {
        for (const key of page.keys ?? []) {
          throwIfAborted(signal);
          if (typeof key !== 'string') throw new TransientError('malformed response from the node store server');
          yield key;
        }
        if (cursor === undefined) return;
        page = await this.request({ op, cursor }, signal);
        cursor = page.cursor;
      }
    } finally {
      if (cursor !== undefined && !this.closed) this.request({ op: 'list-close', cursor }).catch(() => undefined);
    }
  }
}

/**
 * A SlotStore that forwards every call to a running gateway's socket: how a
 * CLI command uses the slot store while the gateway holds the node's
 * LevelDB. Errors the server's store threw arrive as the same typed class
 * (ConflictError stays ConflictError); a refused, lost or silent connection
 * is TransientError.
 *
 * Bounds: what waits on the connection is exactly the callers' own
 * requests, each with a timeout; list pulls one page (LIST_PAGE keys) at a
 * time, so a slow consumer never makes the server buffer.
 */
export class SocketSlotStore implements SlotStore {
  constructor(private readonly client: SocketClient) {}

  /** A slot store with a connection of its own. */
  static async connect(socketPath: string, options: SocketSlotStoreOptions = {}): Promise<SocketSlotStore> {
    return new SocketSlotStore(await SocketClient.connect(socketPath, options));
  }

  async get(storageIndex: Uint8Array, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    checkStorageIndex(storageIndex);
    const response = await this.client.request({ op: 'get', si: toHex(storageIndex) }, options.signal);
    return response.entry == null ? undefined : decodeEntry(response.entry);
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options: AbortOptions = {}): Promise<void> {
    checkSwap(storageIndex, expectedSeq, next);
    await this.client.request(
      {
        op: 'cas',
        si: toHex(storageIndex),
        expected: expectedSeq === null ? null : expectedSeq.toString(),
        seq: next.seq.toString(),
        record: toBase64(next.record),
      },
      options.signal,
    );
  }

  async *list(options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    for await (const hex of this.client.pages('list', options.signal)) {
      if (!isHexIndex(hex)) throw new TransientError('malformed response from the node store server');
      yield fromHex(hex);
    }
  }

  /** History is served when the gateway's store keeps it; otherwise each call fails with the server's InvalidInputError. */
  get history(): SlotHistory {
    return this.#history;
  }

  readonly #history: SlotHistory = {
    pin: async (root, createdMs, options = {}) => {
      checkStorageIndex(root);
      checkCreatedMs(createdMs);
      return decodePin((await this.client.request({ op: 'pin', si: toHex(root), createdMs }, options.signal)).pin);
    },
    unpin: async (root, epoch, options = {}) => {
      checkStorageIndex(root);
      checkEpoch(epoch);
      return (await this.client.request({ op: 'unpin', si: toHex(root), epoch: epoch.toString() }, options.signal)).removed === true;
    },
    prune: async (options = {}) => {
      const pruned = (await this.client.request({ op: 'history-prune' }, options.signal)).pruned;
      if (typeof pruned !== 'number') throw new TransientError('malformed response from the node store server');
      return pruned;
    },
    pins: (root, options = {}) => this.#pins(root, options),
    getAt: async (si, epoch, options = {}) => {
      checkStorageIndex(si);
      checkEpoch(epoch);
      const response = await this.client.request({ op: 'get-at', si: toHex(si), epoch: epoch.toString() }, options.signal);
      return response.entry == null ? undefined : decodeEntry(response.entry);
    },
  };

  async *#pins(root: Uint8Array | undefined, options: AbortOptions): AsyncIterable<SnapshotPin> {
    if (root !== undefined) checkStorageIndex(root);
    for await (const text of this.client.pages('pins', options.signal, root === undefined ? undefined : toHex(root))) yield decodePin(text);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/**
 * A ChunkStore that forwards every call to a running gateway's socket: the
 * gateway's pack store owns the journal, so a CLI command's puts go into it
 * too, in order with the swaps that make them reachable (docs/spec/packs.md).
 * Bytes come back re-hashed here as well: the socket is trusted no more
 * than any store.
 */
/** Objects per repack request: one batch of the pack store's, a few seconds of work. */
const REPACK_STEP = 1024;

export class SocketChunkStore implements ChunkStore {
  readonly features: ChunkStoreFeatures = { delete: true, list: true };

  constructor(private readonly client: SocketClient) {}

  async put(bytes: Uint8Array, options: AbortOptions = {}): Promise<ChunkAddress> {
    if (bytes.length > MAX_CHUNK_BYTES) throw new InvalidInputError(`chunk of ${bytes.length} bytes exceeds ${MAX_CHUNK_BYTES}`);
    const response = await this.client.request({ op: 'chunk-put', bytes: toBase64(bytes) }, options.signal);
    const address = parseServerAddress(response.address);
    if (!address.equals(addressOf(bytes))) throw new TransientError('the node store server answered another address');
    return address;
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<Uint8Array> {
    assertChunkAddress(address);
    const response = await this.client.request({ op: 'chunk-get', address: address.toString() }, options.signal);
    if (typeof response.bytes !== 'string') throw new TransientError('malformed response from the node store server');
    const bytes = fromBase64(response.bytes);
    verifyChunk(address, bytes);
    return bytes;
  }

  async has(address: ChunkAddress, options: AbortOptions = {}): Promise<boolean> {
    assertChunkAddress(address);
    return (await this.client.request({ op: 'chunk-has', address: address.toString() }, options.signal)).has === true;
  }

  async delete(address: ChunkAddress, options: AbortOptions = {}): Promise<void> {
    assertChunkAddress(address);
    await this.client.request({ op: 'chunk-delete', address: address.toString() }, options.signal);
  }

  async deleteIfIdleSince(address: ChunkAddress, cutoffMs: number, options: AbortOptions = {}): Promise<number | undefined> {
    assertChunkAddress(address);
    const response = await this.client.request(
      { op: 'chunk-delete-idle', address: address.toString(), cutoffMs: Math.floor(cutoffMs) },
      options.signal,
    );
    if (response.freed !== null && typeof response.freed !== 'number')
      throw new TransientError('malformed response from the node store server');
    return response.freed ?? undefined;
  }

  async compact(options: CompactOptions = {}): Promise<CompactResult> {
    const request = {
      op: 'chunk-compact' as const,
      dryRun: options.dryRun === true,
      ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
    };
    const compact = (await this.client.request(request, options.signal)).compact;
    if (compact === undefined) throw new TransientError('malformed response from the node store server');
    return compact;
  }

  /**
   * Through the socket a repack goes in steps of REPACK_STEP objects, each
   * one request well inside the request timeout, until a step moves nothing.
   * The last step walked everything left, so its skipped count is the total.
   */
  async repack(options: RepackOptions = {}): Promise<RepackResult> {
    const total: RepackResult = { moved: 0, movedBytes: 0, dropped: 0, skipped: 0, damaged: 0 };
    for (;;) {
      const request = { op: 'chunk-repack' as const, dryRun: options.dryRun === true, ...(options.dryRun ? {} : { limit: REPACK_STEP }) };
      const step = (await this.client.request(request, options.signal)).repack;
      if (step === undefined) throw new TransientError('malformed response from the node store server');
      total.moved += step.moved;
      total.movedBytes += step.movedBytes;
      total.dropped += step.dropped;
      total.skipped = step.skipped;
      total.damaged = step.damaged;
      if (options.dryRun || step.moved + step.dropped === 0) return total;
    }
  }

  async stat(address: ChunkAddress, options: AbortOptions = {}): Promise<ChunkStat | undefined> {
    assertChunkAddress(address);
    return (await this.client.request({ op: 'chunk-stat', address: address.toString() }, options.signal)).stat ?? undefined;
  }

  async flush(options: AbortOptions = {}): Promise<void> {
    await this.client.request({ op: 'chunk-flush' }, options.signal);
  }

  async *list(options: AbortOptions = {}): AsyncIterable<ChunkAddress> {
    for await (const text of this.client.pages('chunk-list', options.signal)) yield parseServerAddress(text);
  }

  async usage(options: AbortOptions = {}): Promise<{ chunks: number; bytes: number }> {
    const usage = (await this.client.request({ op: 'chunk-usage' }, options.signal)).usage;
    if (usage === undefined) throw new TransientError('malformed response from the node store server');
    return usage;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

function parseServerAddress(text: unknown): ChunkAddress {
  try {
    return parseAddress(String(text));
  } catch {
    throw new TransientError('malformed response from the node store server');
  }
}
