import type { AbortOptions } from '../../errors.js';
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
 * Contract (test/conformance/object-index.ts checks it for every backend):
 * - get MUST return the entry last put for the address, or undefined.
 * - putMany MUST upsert every entry (a later put of an address replaces the
 *   earlier one, location and time) and, once it resolves, be visible to get
 *   from any client of the same backend. It need not be durable: callers put
 *   only entries whose objects are already durable, and the index is rebuilt
 *   from the packs after a crash.
 * - removeIf MUST delete the entry only while it still names `location`
 *   (a newer copy put meanwhile stays), atomically, and answer whether it did.
 * - list yields every entry once (order unspecified), for check and gc.
 * - every method honours `signal`.
 */
export interface ObjectIndex {
  get(address: ChunkAddress, options?: AbortOptions): Promise<IndexEntry | undefined>;
  putMany(entries: readonly IndexEntry[], options?: AbortOptions): Promise<void>;
  removeIf(address: ChunkAddress, location: Location, options?: AbortOptions): Promise<boolean>;
  list(options?: AbortOptions): AsyncIterable<IndexEntry>;
  close(): Promise<void>;
}

export function sameLocation(a: Location, b: Location): boolean {
  return a.pack === b.pack && a.offset === b.offset && a.length === b.length;
}

/** An index in memory: real (tests and single-process stores), not a mock. */
export class MemoryObjectIndex implements ObjectIndex {
  readonly #entries = new Map<string, IndexEntry>();

  async get(address: ChunkAddress): Promise<IndexEntry | undefined> {
    const e = this.#entries.get(address.toString());
    return e && { ...e, location: { ...e.location } };
  }

  async putMany(entries: readonly IndexEntry[]): Promise<void> {
    for (const e of entries) this.#entries.set(e.address.toString(), { ...e, location: { ...e.location } });
  }

  async removeIf(address: ChunkAddress, location: Location): Promise<boolean> {
    const key = address.toString();
    const e = this.#entries.get(key);
    if (e === undefined || !sameLocation(e.location, location)) return false;
    this.#entries.delete(key);
    return true;
  }

  async *list(): AsyncIterable<IndexEntry> {
    for (const e of [...this.#entries.values()]) yield { ...e, location: { ...e.location } };
  }

  async close(): Promise<void> {}
}
