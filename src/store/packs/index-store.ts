import { type AbortOptions, throwIfAborted } from '../../errors.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import type { Location } from './format.js';

/** Where one object's bytes are, and when a writer last stored or deduplicated against it. */
export interface IndexEntry {
  address: ChunkAddress;
  location: Location;
  /** Whole seconds since the epoch. */
  lastPutSec: number;
}

/**
 * The object index: address → where its bytes are (docs/spec/packs.md).
 * It is a cache of what the packs say and can be rebuilt from them, so it
 * holds no secret and is trusted no more than the packs: every read re-hashes
 * the bytes it finds there.
 *
 * Contract (test/conformance/object-index.ts checks it for every backend).
 * Several gateways may share one index (PostgreSQL), so every change that
 * depends on what an entry holds is one conditional, atomic operation, never
 * a read followed by a write:
 * - get MUST return the entry last put for the address, or undefined.
 * - getMany MUST answer, in the order asked (repeats included), what get
 *   would answer for each address; it is one round trip where the backend
 *   allows (a sequential reader looks up its next chunks in one go).
 * - putMany MUST upsert every entry (a later put of an address replaces the
 *   earlier one, location and time) and, once it resolves, be visible to get
 *   from any client of the same backend. It need not be durable: callers put
 *   only entries whose objects are already durable, and the index is rebuilt
 *   from the packs after a crash.
 * - refreshIf MUST set the entry's last put only while it still names
 *   `location`, and answer whether it did (a deduplicating put relies on the
 *   copy only if so: gc may have removed the entry since it was read).
 * - removeIf MUST delete the entry only while it still names `location`
 *   and, with `idleBeforeSec`, only while its last put is older than that
 *   (a put refreshing it meanwhile wins), atomically, and answer whether it did.
 * - moveIf MUST re-point the entry from `from` to `to`, keeping its last
 *   put, only while it still names `from` (compaction's move loses to a
 *   delete or a newer copy), and answer whether it did.
 * - list yields every entry once (order unspecified), for check and gc.
 * - every method honours `signal`.
 */
export interface ObjectIndex {
  get(address: ChunkAddress, options?: AbortOptions): Promise<IndexEntry | undefined>;
  getMany(addresses: readonly ChunkAddress[], options?: AbortOptions): Promise<(IndexEntry | undefined)[]>;
  putMany(entries: readonly IndexEntry[], options?: AbortOptions): Promise<void>;
  refreshIf(address: ChunkAddress, location: Location, lastPutSec: number, options?: AbortOptions): Promise<boolean>;
  removeIf(address: ChunkAddress, location: Location, options?: RemoveIfOptions): Promise<boolean>;
  moveIf(address: ChunkAddress, from: Location, to: Location, options?: AbortOptions): Promise<boolean>;
  list(options?: AbortOptions): AsyncIterable<IndexEntry>;
  close(): Promise<void>;
}

export interface RemoveIfOptions extends AbortOptions {
  /** Remove only an entry last put before this second (gc's cutoff). */
  idleBeforeSec?: number | undefined;
}

export function sameLocation(a: Location, b: Location): boolean {
  return a.pack === b.pack && a.offset === b.offset && a.length === b.length;
}

/** An index in memory: real (tests and single-process stores), not a mock. */
export class MemoryObjectIndex implements ObjectIndex {
  readonly #entries = new Map<string, IndexEntry>();

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<IndexEntry | undefined> {
    throwIfAborted(options.signal);
    const e = this.#entries.get(address.toString());
    return e && { ...e, location: { ...e.location } };
  }

  async getMany(addresses: readonly ChunkAddress[], options: AbortOptions = {}): Promise<(IndexEntry | undefined)[]> {
    throwIfAborted(options.signal);
    return Promise.all(addresses.map((address) => this.get(address)));
  }

  async putMany(entries: readonly IndexEntry[], options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    for (const e of entries) this.#entries.set(e.address.toString(), { ...e, location: { ...e.location } });
  }

  async refreshIf(address: ChunkAddress, location: Location, lastPutSec: number, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    const e = this.#entries.get(address.toString());
    if (e === undefined || !sameLocation(e.location, location)) return false;
    e.lastPutSec = lastPutSec;
    return true;
  }

  async removeIf(address: ChunkAddress, location: Location, options: RemoveIfOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    const key = address.toString();
    const e = this.#entries.get(key);
    if (e === undefined || !sameLocation(e.location, location)) return false;
    if (options.idleBeforeSec !== undefined && e.lastPutSec >= options.idleBeforeSec) return false;
    this.#entries.delete(key);
    return true;
  }

  async moveIf(address: ChunkAddress, from: Location, to: Location, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    const e = this.#entries.get(address.toString());
    if (e === undefined || !sameLocation(e.location, from)) return false;
    e.location = { ...to };
    return true;
  }

  async *list(): AsyncIterable<IndexEntry> {
    for (const e of [...this.#entries.values()]) yield { ...e, location: { ...e.location } };
  }

  async close(): Promise<void> {}
}
