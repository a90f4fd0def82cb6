import { Level } from 'level';
import type { CapstanEvent, CommitCheck, StoredEvent } from './api.js';
import { OutboxFullError } from './api.js';

/**
 * The durable outbox: a LevelDB of its own (store/outbox in the node
 * directory; the slot store's LevelDB is a separate database) holding every
 * event not yet confirmed by every sink.
 *
 * Keys: `e!` + the sequence number as 16 hex digits, so LevelDB's byte order
 * is sequence order; values: the event's JSON, exactly the bytes sinks send.
 * `c!` + sink name: that sink's cursor, the last sequence it confirmed.
 * `i!` + event id: an intent (docs/spec/events.md, Intents): the event of a
 * change about to be made and the check that tells whether it was; never
 * read by a sink.
 *
 * - append() assigns sequences in call order and group-commits: every event
 *   queued while one batch is being written goes into the next batch, one
 *   `sync: true` LevelDB write each. It resolves only after its batch is on
 *   disk, so sequence numbers on disk have no gaps and a reader never sees
 *   sequence n+1 before n.
 * - intend() writes an intent with the same group commit (synced);
 *   commit() turns it into an event (the intent deleted and the event
 *   appended in one synced batch); drop() deletes it. intents() lists the
 *   ones left by a crash, for the caller to resolve at start.
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

const INTENT_PREFIX = 'i!';
/** Version of an intent record's JSON; an unknown one is left alone (and logged by the resolver). */
export const INTENT_VERSION = 1;

/** An intent as stored: the event to publish if the change committed, and how to tell. */
export interface StoredIntent {
  v: typeof INTENT_VERSION;
  event: CapstanEvent;
  check: CommitCheck;
}

/** One write waiting for the next group commit. */
type Write =
  | { kind: 'event'; event: CapstanEvent; fromIntent: boolean }
  | { kind: 'intent'; intent: StoredIntent }
  | { kind: 'drop'; id: string };
type QueuedWrite = Write & { resolve: () => void; reject: (err: unknown) => void };
type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

export class Outbox {
  readonly #db: Level<string, string>;
  readonly #maxEvents: number;
  readonly #cursors = new Map<string, bigint>();
  /** Highest sequence on disk. */
  #last: bigint;
  /** Highest sequence assigned (on disk or in the batch being written). */
  #assigned: bigint;
  #queue: QueuedWrite[] = [];
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
    return this.#enqueue({ kind: 'event', event, fromIntent: false });
  }

  /** Writes an intent; resolves once it is synced to disk. */
  intend(event: CapstanEvent, check: CommitCheck): Promise<void> {
    return this.#enqueue({ kind: 'intent', intent: { v: INTENT_VERSION, event, check } });
  }

  /** The intent's change committed: its event is appended and the intent deleted, in one synced batch. */
  commit(event: CapstanEvent): Promise<void> {
    return this.#enqueue({ kind: 'event', event, fromIntent: true });
  }

  /** The intent's change did not commit: the intent is deleted. */
  drop(id: string): Promise<void> {
    return this.#enqueue({ kind: 'drop', id });
  }

  /** Intents on disk (left by a crash, or by a change whose outcome was unknown), at most `limit`. */
  async intents(limit = MAX_GROUP): Promise<StoredIntent[]> {
    const out: StoredIntent[] = [];
    for await (const value of this.#db.values({ gte: INTENT_PREFIX, lt: INTENT_PREFIX + '~', limit })) {
      out.push(JSON.parse(value) as StoredIntent);
    }
    return out;
  }

  #enqueue(write: Write): Promise<void> {
    if (this.#closed) return Promise.reject(new OutboxFullError('event outbox closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...write, resolve, reject });
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const group = this.#queue.splice(0, MAX_GROUP);
        const ops: BatchOp[] = [];
        let events = 0n;
        for (const item of group) {
          if (item.kind === 'event') {
            events++;
            ops.push({ type: 'put', key: eventKey(++this.#assigned), value: JSON.stringify(item.event) });
            if (item.fromIntent) ops.push({ type: 'del', key: INTENT_PREFIX + item.event.id });
          } else if (item.kind === 'intent') {
            ops.push({ type: 'put', key: INTENT_PREFIX + item.intent.event.id, value: JSON.stringify(item.intent) });
          } else {
            ops.push({ type: 'del', key: INTENT_PREFIX + item.id });
          }
        }
        try {
          await this.#db.batch(ops, { sync: true });
        } catch (err) {
          // Nothing of this batch is on disk (LevelDB batches are atomic): reuse its sequence numbers.
          this.#assigned -= events;
          for (const item of group) item.reject(err);
          continue;
        }
        this.#last = this.#assigned;
        for (const item of group) item.resolve();
        if (events > 0n) for (const wake of [...this.#waiters]) wake();
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
