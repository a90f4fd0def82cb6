import net from 'node:net';
import { AbortError, TransientError, throwIfAborted, type AbortOptions } from '../errors.js';
import { checkStorageIndex, checkSwap } from './slot-limits.js';
import {
  LineSplitter,
  decodeEntry,
  decodeError,
  fromHex,
  isHexIndex,
  toBase64,
  toHex,
  type Request,
  type Response,
} from './slot-socket-protocol.js';
import type { SlotEntry, SlotStore } from './slot-store.js';

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
    socket.on('close', () => this.fail('the connection to the slot store server closed'));
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
 * A SlotStore that forwards every call to serveSlotStore over a unix-domain
 * socket: how a CLI command uses the slot store while the gateway holds the
 * node's LevelDB. Errors the server's store threw arrive as the same typed
 * class (ConflictError stays ConflictError); a refused, lost or silent
 * connection is TransientError. After a lost connection the next call dials
 * again.
 *
 * Bounds: one connection; what waits on it is exactly the callers' own
 * requests, each with a timeout; list pulls one page (LIST_PAGE keys) at a
 * time, so a slow consumer never makes the server buffer.
 */
export class SocketSlotStore implements SlotStore {
  private connection?: Promise<Connection>;
  private closed = false;

  private constructor(
    readonly socketPath: string,
    private readonly timeoutMs: number,
  ) {}

  /** Connects now, so a missing server is reported here (TransientError) rather than on first use. */
  static async connect(socketPath: string, options: SocketSlotStoreOptions = {}): Promise<SocketSlotStore> {
    const store = new SocketSlotStore(socketPath, options.timeoutMs ?? 30_000);
    await store.dial();
    return store;
  }

  async get(storageIndex: Uint8Array, options: AbortOptions = {}): Promise<SlotEntry | undefined> {
    checkStorageIndex(storageIndex);
    const response = await this.request({ op: 'get', si: toHex(storageIndex) }, options.signal);
    return response.entry == null ? undefined : decodeEntry(response.entry);
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options: AbortOptions = {}): Promise<void> {
    checkSwap(storageIndex, expectedSeq, next);
    await this.request(
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
    const { signal } = options;
    let page = await this.request({ op: 'list' }, signal);
    let cursor = page.cursor;
    try {
      for (;;) {
        for (const hex of page.keys ?? []) {
          throwIfAborted(signal);
          if (!isHexIndex(hex)) throw new TransientError('malformed response from the slot store server');
          yield fromHex(hex);
        }
        if (cursor === undefined) return;
        page = await this.request({ op: 'list', cursor }, signal);
        cursor = page.cursor;
      }
    } finally {
      // Abandoned early (break, abort, error): let the server drop its iterator now.
      if (cursor !== undefined && !this.closed) {
        this.request({ op: 'list-close', cursor }).catch(() => undefined);
      }
    }
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

  private async request(body: RequestBody, signal?: AbortSignal): Promise<Ok> {
    throwIfAborted(signal);
    if (this.closed) throw new Error('SocketSlotStore used after close()');
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
        settle(() => reject(new TransientError('the slot store server did not answer in time')));
      }, this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const id = connection.send(body, {
        resolve: (response) => settle(() => resolve(response)),
        reject: (err) => settle(() => reject(err)),
      });
    });
  }
}
