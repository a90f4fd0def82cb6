/**
 * Every reader's cached chunks together, in one least-recently-used order.
 *
 * Why: read()'s cache is bounded per reader (READ_CACHE_CHUNKS), but a
 * client opens as many readers as it likes (SFTP: max_handles per session,
 * several sessions per connection, many connections). One session that
 * opened 250 handles on a file and read four scattered chunks through each
 * made a gateway hold 1 GiB more, and kept it while the handles stayed open.
 * Past the limit, the chunk used least recently goes, whichever reader holds
 * it; that reader fetches it again if it is asked for.
 *
 * Bounds: `limitBytes` over all readers, plus the one chunk just added.
 */
export class ReadCacheLedger {
  /** Insertion order is recency: the first entry is the least recently used. */
  readonly #entries = new Map<object, { bytes: number; evict: () => void }>();
  #bytes = 0;

  constructor(readonly limitBytes: number) {}

  /** Bytes held by every cached chunk now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A chunk entered a reader's cache; `evict` takes it out of that cache (its remove of the key is then a no-op). */
  add(key: object, bytes: number, evict: () => void): void {
    this.remove(key);
    this.#entries.set(key, { bytes, evict });
    this.#bytes += bytes;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.limitBytes || oldest === key) break;
      this.remove(oldest);
      entry.evict();
    }
  }

  /** A cached chunk was used: it is now the most recent. */
  touch(key: object): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
  }

  /** The reader dropped the chunk itself (its own LRU, a failed fetch, close). */
  remove(key: object): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}

/** What all readers of a process cache at most (decrypted chunks, beyond the one each read is using). */
export const READ_CACHE_BYTES = 64 * 1024 * 1024;

/** The process's ledger: readers of every tree share it, as they share the memory it bounds. */
export const readCache = new ReadCacheLedger(READ_CACHE_BYTES);
