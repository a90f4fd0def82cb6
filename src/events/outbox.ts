import { Level } from 'level';
import type { CapstanEvent, StoredEvent } from './api.js';
import { OutboxFullError } from './api.js';

/**
 * The durable outbox: a LevelDB of its own (store/outbox in the node
 * directory; the slot store's LevelDB is a separate database) holding every
 * event not yet confirmed by every sink.
 *
 * Keys: `e!` + the sequence number as 16 hex digits, so LevelDB's byte order
 * is sequence order; values: the event's JSON, exactly the bytes sinks send.
 * `c!` + sink name: that sink's cursor, the last sequence it confirmed.
 *
 * - append() assigns sequences in call order and group-commits: every event
 *   queued while one batch is being written goes into the next batch, one
 *   `sync: true` LevelDB write each. It resolves only after its batch is on
 *   disk, so sequence numbers on disk have no gaps and a reader never sees
 *   sequence n+1 before n.
 * - ack(sink, seq) moves the sink's cursor; events at or below every sink's
 *   cursor are deleted. Cursors are written without sync: losing a cursor
 *   move in a crash only redelivers (at-least-once), never loses.
 * - Bounded: `pending` counts events not yet confirmed by the slowest sink;
 *   admit() throws OutboxFullError once it reaches maxEvents.
 */

export interface OutboxOptions {
  /** Most events held; past it admit() refuses. */
  maxEvents: number;
  /** The sinks whose cursors decide what is deleted. */
  sinks: readonly string[];
}

const EVENT_PREFIX = 'e!';
const CURSOR_PREFIX = 'c!';
/** Events one LevelDB write may carry (bounds one group commit's memory). */
const MAX_GROUP = 1024;

function eventKey(seq: bigint): string {
  return EVENT_PREFIX + seq.toString(16).padStart(16, '0');
}

interface QueuedAppend {
  event: CapstanEvent;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class Outbox {
  readonly #db: Level<string, string>;
  readonly #maxEvents: number;
  readonly #cursors = new Map<string, bigint>();
  /** Highest sequence on disk. */
  #last: bigint;
  /** Highest sequence assigned (on disk or in the batch being written). */
  #assigned: bigint;
  #queue: QueuedAppend[] = [];
  #writing = false;
  #waiters = new Set<() => void>();
  #closed = false;

  private constructor(db: Level<string, string>, maxEvents: number, last: bigint) {
    this.#db = db;
    this.#maxEvents = maxEvents;
    this.#last = last;
    this.#assigned = last;
  }

  static async open(dir: string, opts: OutboxOptions): Promise<Outbox> {
    const db = new Level<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    try {
      let last = 0n;
      let first: bigint | undefined;
      for await (const key of db.keys({ gte: EVENT_PREFIX, lt: EVENT_PREFIX + '~', reverse: true, limit: 1 })) last = seqOf(key);
      for await (const key of db.keys({ gte: EVENT_PREFIX, lt: EVENT_PREFIX + '~', limit: 1 })) first = seqOf(key);
      // Once every event is confirmed and deleted, only the cursors remember how far the sequence got;
      // restarting it lower would make new events look confirmed. (A cursor is written before the
      // deletions it allows, and LevelDB loses a crash's writes only from the end, so no deleted
      // sequence is above every surviving cursor.)
      for await (const value of db.values({ gte: CURSOR_PREFIX, lt: CURSOR_PREFIX + '~' })) {
        const cursor = BigInt(value);
        if (cursor > last) last = cursor;
      }
      const outbox = new Outbox(db, opts.maxEvents, last);
      // A sink seen for the first time starts at the oldest event still held: it gets what others have not confirmed.
      const floor = first !== undefined ? first - 1n : last;
      for (const sink of opts.sinks) {
        const stored = await db.get(CURSOR_PREFIX + sink);
        outbox.#cursors.set(sink, stored !== undefined ? BigInt(stored) : floor);
      }
      return outbox;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /** Events held that some sink has not confirmed yet. */
  get pending(): number {
    return Number(this.#assigned - this.#minCursor());
  }

  get maxEvents(): number {
    return this.#maxEvents;
  }

  cursor(sink: string): bigint {
    return this.#cursors.get(sink) ?? this.#last;
  }

  admit(): void {
    if (this.#closed) throw new OutboxFullError('event outbox closed');
    if (this.pending >= this.#maxEvents) throw new OutboxFullError();
  }

  /** Queues `event` durably; resolves once it is synced to disk. */
  append(event: CapstanEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new OutboxFullError('event outbox closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ event, resolve, reject });
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue.splice(0, MAX_GROUP);
        const ops = group.map((item) => ({ type: 'put' as const, key: eventKey(++this.#assigned), value: JSON.stringify(item.event) }));
        try {
          await this.#db.batch(ops, { sync: true });
        } catch (err) {
          // Nothing of this batch is on disk (LevelDB batches are atomic): reuse its sequence numbers.
          this.#assigned -= BigInt(group.length);
          for (const item of group) item.reject(err);
          continue;
        }
        this.#last = this.#assigned;
        for (const item of group) item.resolve();
        for (const wake of [...this.#waiters]) wake();
      }
    } finally {
      this.#writing = false;
    }
  }

  /** Up to `limit` events after `after`, in sequence order. */
  async read(after: bigint, limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    const lte = eventKey(this.#last);
    for await (const [key, body] of this.#db.iterator({ gt: eventKey(after), lte, limit })) {
      out.push({ seq: seqOf(key), event: JSON.parse(body) as CapstanEvent, body });
    }
    return out;
  }

  /** Resolves when an event after `after` is on disk, or `signal` aborts. */
  waitFor(after: bigint, signal: AbortSignal): Promise<void> {
    if (this.#last > after || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** `sink` confirmed everything up to `seq`; deletes what every sink confirmed. */
  async ack(sink: string, seq: bigint): Promise<void> {
    const before = this.#minCursor();
    if (seq <= (this.#cursors.get(sink) ?? 0n)) return;
    this.#cursors.set(sink, seq);
    await this.#db.put(CURSOR_PREFIX + sink, seq.toString());
    const after = this.#minCursor();
    if (after > before) await this.#db.clear({ gt: eventKey(before), lte: eventKey(after) });
  }

  #minCursor(): bigint {
    let min = this.#last;
    for (const c of this.#cursors.values()) if (c < min) min = c;
    return min;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#writing || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    for (const wake of [...this.#waiters]) wake();
    await this.#db.close();
  }
}

function seqOf(key: string): bigint {
  return BigInt('0x' + key.slice(EVENT_PREFIX.length));
}
