import { addressKey, isChunkAddress } from '../address.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import type { IndexEntry, ObjectIndex } from './index-store.js';

/** Hints kept at most, gateway-wide (about 300 bytes each): 32 for each of 32 sequential readers. */
const MAX_HINTS = 1024;
/** A hint older than this is not used: its reader went elsewhere, and the index may have moved on. */
const MAX_AGE_MS = 30_000;

interface Hint {
  entry: Promise<IndexEntry | undefined>;
  atMs: number;
}

/**
 * Where a sequential reader's next chunks are, looked up ahead in one index
 * getMany (ChunkStore.prefetch) and taken once, by the read that needs it.
 *
 * Why: a download asked the index once a chunk. With the index in
 * PostgreSQL (several gateways) that is a round trip a chunk: 1,024
 * lookups one by one took 180–360 ms of the gateway's CPU, and as long in
 * wall time, against 20–44 ms as 32 getMany calls of 32 (loopback, three
 * rounds). On LevelDB it is a hop to its thread a chunk; there the saving
 * did not show in the CPU of a 1 GiB get (alternated, 8 rounds each, twice).
 *
 * A hint only saves the lookup, it never decides an answer:
 * - one taken is the index's entry as it was at most MAX_AGE_MS ago.
 *   Packs are immutable and their ids are random 64-bit numbers, so a
 *   location that was right still holds the same bytes while its pack
 *   exists; the read re-hashes them as any read does. A pack removed since
 *   (compaction moved the object) gives NotFoundError, and the read asks
 *   the index;
 * - a hint that found nothing, or whose lookup failed, is no hint: the
 *   read asks the index (a put since then is found);
 * - the pack store forgets the hint of an object it deletes, after the
 *   index entry is gone, so a read after a delete in this process finds
 *   nothing as before. (A delete by another gateway was already a race with
 *   any lookup made just before it; gc deletes only objects no file names.)
 */
export class LocationHints {
  readonly #hints = new Map<string, Hint>();

  constructor(
    private readonly index: ObjectIndex,
    private readonly now: () => number = Date.now,
  ) {}

  /** Looks up the addresses not hinted yet, in one getMany; never throws. */
  add(addresses: readonly ChunkAddress[]): void {
    const fresh = new Map<string, ChunkAddress>();
    for (const address of addresses) {
      if (!isChunkAddress(address)) continue;
      const key = addressKey(address);
      if (!this.#hints.has(key)) fresh.set(key, address);
    }
    if (fresh.size < 2) return; // one lookup ahead saves no hop
    let looked: Promise<(IndexEntry | undefined)[]>;
    try {
      looked = this.index.getMany([...fresh.values()]);
    } catch {
      return;
    }
    const atMs = this.now();
    let i = 0;
    for (const key of fresh.keys()) {
      const at = i++;
      this.#hints.set(key, {
        entry: looked.then(
          (entries) => entries[at],
          () => undefined,
        ),
        atMs,
      });
    }
    for (const key of this.#hints.keys()) {
      if (this.#hints.size <= MAX_HINTS) break;
      this.#hints.delete(key);
    }
  }

  /** The hinted entry, once; undefined when there is none or it is too old. */
  take(address: ChunkAddress): Promise<IndexEntry | undefined> | undefined {
    const key = addressKey(address);
    const hint = this.#hints.get(key);
    if (hint === undefined) return undefined;
    this.#hints.delete(key);
    return this.now() - hint.atMs <= MAX_AGE_MS ? hint.entry : undefined;
  }

  forget(address: ChunkAddress): void {
    this.#hints.delete(addressKey(address));
  }

  /** Hints held (tests). */
  get size(): number {
    return this.#hints.size;
  }
}
