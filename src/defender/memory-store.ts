import { ConflictError, InvalidInputError, throwIfAborted, type AbortOptions } from '../errors.js';
import { isForgettable, type ClientRecord } from './policy.js';
import { MAX_CLIENT_KEY_LENGTH, type BanEntry, type DefenderStore, type VersionedRecord } from './store.js';

export const DEFAULT_MAX_STORED_CLIENTS = 10_000;

export function checkClientKey(key: string): void {
  if (key === '' || key.length > MAX_CLIENT_KEY_LENGTH) throw new InvalidInputError('a defender client key is 1 to 100 characters');
}

/** A deep copy, so no caller shares a record with the store (or with another caller). */
export function copyRecord(record: ClientRecord): ClientRecord {
  return { ...record, events: record.events.map((e) => ({ ...e })) };
}

/** Whether a write of `record` may change the ban list: it is banned at the time it was made. */
export function changesBans(record: ClientRecord): boolean {
  return record.bannedUntil > record.lastSeen;
}

/**
 * Client records in a Map: one process, forgotten at exit (tests, and the
 * local view a gateway falls back on when its shared store fails). Bounded:
 * creating a key past `maxEntries` first deletes per sweep's order (a
 * forgettable record, else the least recently written one that is not
 * banned, else the least recently written one), so the Map never holds more.
 *
 * `onChange`, if given, hears every write and deletion (eviction included)
 * synchronously, in order: LevelDefenderStore persists them.
 */
export class MemoryDefenderStore implements DefenderStore {
  /** Insertion order = recency: a key is re-inserted at every write. */
  readonly #records = new Map<string, VersionedRecord>();
  readonly #maxEntries: number;
  readonly #onChange: ((key: string, value: VersionedRecord | undefined) => void) | undefined;
  #generation = 0;

  constructor(
    options: { maxEntries?: number; onChange?: (key: string, value: VersionedRecord | undefined) => void } = {},
    initial: Iterable<[string, VersionedRecord]> = [],
  ) {
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_STORED_CLIENTS;
    if (!(this.#maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
    this.#onChange = options.onChange;
    // Oldest first, so the Map's order is recency again.
    const sorted = [...initial].sort(([, a], [, b]) => a.record.lastSeen - b.record.lastSeen);
    for (const [key, value] of sorted) this.#records.set(key, value);
  }

  async get(key: string, options: AbortOptions = {}): Promise<VersionedRecord | undefined> {
    throwIfAborted(options.signal);
    checkClientKey(key);
    const found = this.#records.get(key);
    return found === undefined ? undefined : { version: found.version, record: copyRecord(found.record) };
  }

  async put(key: string, expectedVersion: number | undefined, record: ClientRecord, options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    checkClientKey(key);
    const current = this.#records.get(key);
    if (current?.version !== expectedVersion) throw new ConflictError('defender record is not at the expected version');
    if (current === undefined) this.#makeRoom(record.lastSeen);
    const value = { version: (current?.version ?? 0) + 1, record: copyRecord(record) };
    this.#records.delete(key);
    this.#records.set(key, value);
    if (changesBans(record)) this.#generation++;
    this.#onChange?.(key, value);
    return value.version;
  }

  async delete(key: string, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    checkClientKey(key);
    if (!this.#records.has(key)) return false;
    this.#remove(key);
    return true;
  }

  async bans(now: number, limit: number, options: AbortOptions = {}): Promise<BanEntry[]> {
    throwIfAborted(options.signal);
    const out: BanEntry[] = [];
    for (const [key, { record }] of this.#records) {
      if (record.bannedUntil > now) out.push({ key, bannedUntil: record.bannedUntil, offences: record.offences });
    }
    return out.sort((a, b) => b.bannedUntil - a.bannedUntil).slice(0, limit);
  }

  async generation(options: AbortOptions = {}): Promise<string> {
    throwIfAborted(options.signal);
    return String(this.#generation);
  }

  async sweep(now: number, maxEntries: number, options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    let deleted = 0;
    for (const [key, { record }] of this.#records) {
      if (isForgettable(record, now)) {
        this.#remove(key);
        deleted++;
      }
    }
    while (this.#records.size > maxEntries && this.#evictOne(now)) deleted++;
    return deleted;
  }

  async size(options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal);
    return this.#records.size;
  }

  async close(): Promise<void> {}

  /** Sets (or, with undefined, deletes) a record unconditionally: the Defender's local view mirrors what the shared store said. */
  replace(key: string, record: ClientRecord | undefined): void {
    if (record === undefined) {
      if (this.#records.has(key)) this.#remove(key);
      return;
    }
    const current = this.#records.get(key);
    if (current === undefined) this.#makeRoom(record.lastSeen);
    const value = { version: (current?.version ?? 0) + 1, record: copyRecord(record) };
    this.#records.delete(key);
    this.#records.set(key, value);
    this.#onChange?.(key, value);
  }

  /** Makes room for one more key. */
  #makeRoom(now: number): void {
    if (this.#records.size < this.#maxEntries) return;
    for (const [key, { record }] of this.#records) {
      if (isForgettable(record, now)) {
        this.#remove(key);
        return;
      }
    }
    this.#evictOne(now);
  }

  /** Deletes the least recently written record not banned at `now`, else the least recently written one. */
  #evictOne(now: number): boolean {
    for (const [key, { record }] of this.#records) {
      if (record.bannedUntil <= now) {
        this.#remove(key);
        return true;
      }
    }
    // Every record is a ban: the oldest goes (the bound holds).
    const oldest = this.#records.keys().next();
    if (oldest.done === true) return false;
    this.#remove(oldest.value);
    return true;
  }

  /** Any deletion may drop a ban (an eviction, an operator's unban): readers refetch. */
  #remove(key: string): void {
    this.#records.delete(key);
    this.#generation++;
    this.#onChange?.(key, undefined);
  }
}
