import { Level } from 'level';
import { CID } from 'multiformats/cid';
import { type AbortOptions, IntegrityError, throwIfAborted } from '../../errors.js';
import { isChunkAddress } from '../address.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import { AddressFilter } from './address-filter.js';
import { type Location, PACK_ID_BYTES } from './format.js';
import { type IndexEntry, type ObjectIndex, type RemoveIfOptions, sameLocation } from './index-store.js';

/**
 * The object index in the node's LevelDB (the one that holds the slots),
 * docs/spec/packs.md:
 *
 *     key   = 0x6f ("o") ‖ binary CID (36 bytes)              37 bytes; slot keys are 32
 *     value = pack id (8) ‖ u64 offset ‖ u32 length ‖ u32 last put (seconds)
 *
 * Writes are not synced: the journal is the durable copy, and the engine's
 * synced marks (local-engine.ts) make them durable in batches. removeIf and
 * putMany, refreshIf, removeIf and moveIf run one at a time (a mutex): each
 * conditional change is atomic against every other change through this
 * index, which is the only writer of its keys (the engine owns the LevelDB).
 */
export const INDEX_PREFIX = 0x6f;
const VALUE_BYTES = PACK_ID_BYTES + 8 + 4 + 4;
/** Where an address's SHA-256 digest starts in its binary CID (version, codec, hash code, length). */
const DIGEST_IN_CID = 4;
/** The first filter's size: a million objects (1.25 MiB); it grows fourfold when outgrown. */
const FIRST_FILTER_CAPACITY = 1 << 20;
/** The options of a synced write, shared (abstract-level only reads them). */
const SYNCED = { sync: true } as const;

export function indexKey(address: ChunkAddress): Uint8Array {
  const cid = address.bytes;
  const key = new Uint8Array(1 + cid.length);
  key[0] = INDEX_PREFIX;
  key.set(cid, 1);
  return key;
}

function encodeValue(entry: IndexEntry): Uint8Array {
  const b = Buffer.allocUnsafe(VALUE_BYTES);
  b.write(entry.location.pack, 0, PACK_ID_BYTES, 'hex');
  b.writeBigUInt64BE(BigInt(entry.location.offset), PACK_ID_BYTES);
  b.writeUInt32BE(entry.location.length, PACK_ID_BYTES + 8);
  b.writeUInt32BE(entry.lastPutSec >>> 0, PACK_ID_BYTES + 12);
  return b;
}

function decodeValue(address: ChunkAddress, value: Uint8Array): IndexEntry {
  if (value.length !== VALUE_BYTES) throw new IntegrityError(address.toString(), 'index entry');
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return {
    address,
    location: {
      pack: b.subarray(0, PACK_ID_BYTES).toString('hex'),
      offset: Number(b.readBigUInt64BE(PACK_ID_BYTES)),
      length: b.readUInt32BE(PACK_ID_BYTES + 8),
    },
    lastPutSec: b.readUInt32BE(PACK_ID_BYTES + 12),
  };
}

/**
 * Misses are answered by an AddressFilter once one is built (startFilter,
 * after the engine's recovery), never before. Why it lacks no entry: a
 * put adds its addresses to the filter being built *after* its LevelDB
 * write, and the filter is installed as the one being built before the
 * scan's snapshot is taken; so a write the snapshot missed came after
 * both and added itself. Puts also add *before* their write, to the filter
 * in use, so no get finds an entry in LevelDB that the filter denies.
 * Outgrown, a four times larger one is built the same way while the old
 * one keeps answering. Bounds: the filters' bytes (10 bits per object; two
 * of them while one grows).
 */
export class LevelObjectIndex implements ObjectIndex {
  #lock: Promise<unknown> = Promise.resolve();
  /** Answers lookups: complete for every entry ever put while it existed, and every one before its scan. */
  #filter: AddressFilter | undefined;
  /** Being filled by a scan; receives every put meanwhile. */
  #building: AddressFilter | undefined;
  #scan: Promise<void> | undefined;
  #closed = false;

  /**
   * `syncWrites`: every write is a synced LevelDB write. Needed where the
   * index is the only record of where objects are (packs on S3 with the
   * index in LevelDB: no journal replays it after a crash); the embedded
   * default's index is rebuilt from its journal and writes unsynced.
   * `ownsDb`: close() closes the database too.
   */
  constructor(
    private readonly db: Level<Uint8Array, Uint8Array>,
    private readonly options: { syncWrites?: boolean; ownsDb?: boolean } = {},
  ) {}

  /** An index in a LevelDB of its own (packs on S3 with LevelDB slots: `store/objects`), synced writes, filter started. */
  static async openOwned(dir: string): Promise<LevelObjectIndex> {
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    const index = new LevelObjectIndex(db, { syncWrites: true, ownsDb: true });
    index.startFilter();
    return index;
  }

  /** Builds the miss filter in the background (a scan of the index's keys); lookups use LevelDB until it is done. */
  startFilter(capacity = FIRST_FILTER_CAPACITY): void {
    if (this.#scan !== undefined || this.#closed) return;
    // A scan that fails (the database closed under it) leaves lookups exact, as before it began.
    this.#scan = this.#build(capacity)
      .catch(() => undefined)
      .finally(() => {
        this.#scan = undefined;
      });
  }

  /** The filter in use (tests, status), or undefined while none is complete. */
  get filter(): AddressFilter | undefined {
    return this.#filter;
  }

  async #build(capacity: number): Promise<void> {
    const range = { gte: Uint8Array.of(INDEX_PREFIX), lt: Uint8Array.of(INDEX_PREFIX + 1) };
    for (;;) {
      // Set before the scan's snapshot is taken: a put that lands after it adds itself here (putMany).
      const filter = new AddressFilter(capacity);
      this.#building = filter;
      let outgrown = false;
      try {
        for await (const key of this.db.keys(range)) {
          if (this.#closed) return;
          if (key.length < 1 + DIGEST_IN_CID + 8) continue;
          filter.add(key, 1 + DIGEST_IN_CID);
          if (filter.added > filter.capacity) {
            outgrown = true;
            break;
          }
        }
      } finally {
        if (this.#building === filter) this.#building = undefined;
      }
      if (!outgrown) {
        this.#filter = filter;
        return;
      }
      capacity *= 4;
    }
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<IndexEntry | undefined> {
    throwIfAborted(options.signal);
    if (this.#filter?.mayHold(address.multihash.digest) === false) return undefined;
    const value = (await this.db.get(indexKey(address))) as Uint8Array | undefined;
    return value === undefined ? undefined : decodeValue(address, value);
  }

  async getMany(addresses: readonly ChunkAddress[], options: AbortOptions = {}): Promise<(IndexEntry | undefined)[]> {
    throwIfAborted(options.signal);
    const filter = this.#filter;
    // Only the addresses the filter may hold go to LevelDB, in one getMany (one hop to its thread).
    const asked: { at: number; address: ChunkAddress }[] = [];
    addresses.forEach((address, at) => {
      if (filter?.mayHold(address.multihash.digest) !== false) asked.push({ at, address });
    });
    const values = asked.length === 0 ? [] : ((await this.db.getMany(asked.map((a) => indexKey(a.address)))) as (Uint8Array | undefined)[]);
    const out = new Array<IndexEntry | undefined>(addresses.length).fill(undefined);
    asked.forEach(({ at, address }, k) => {
      const value = values[k];
      if (value !== undefined) out[at] = decodeValue(address, value);
    });
    return out;
  }

  async putMany(entries: readonly IndexEntry[], options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    return this.#exclusive(async () => {
      if (entries.length === 0) return;
      // Into the filters before the write, so no get finds the entry in LevelDB but not in the filter;
      // and into a filter being built after it too, so a scan whose snapshot missed the write has it.
      for (const e of entries) {
        this.#filter?.add(e.address.multihash.digest);
        this.#building?.add(e.address.multihash.digest);
      }
      if (this.#filter !== undefined && this.#filter.added > this.#filter.capacity) this.startFilter(this.#filter.capacity * 4);
      const ops = entries.map((e) => ({ type: 'put' as const, key: indexKey(e.address), value: encodeValue(e) }));
      // Unsynced, with no options object at all: abstract-level copies a batch's options into every
      // operation, and that cost some 30 mallocs a batch in V8's map updates (a small upload makes one
      // or two of these batches).
      await (this.options.syncWrites === true ? this.db.batch(ops, SYNCED) : this.db.batch(ops));
      for (const e of entries) this.#building?.add(e.address.multihash.digest, 0, false);
    });
  }

  async refreshIf(address: ChunkAddress, location: Location, lastPutSec: number, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    return this.#exclusive(async () => {
      const current = await this.get(address);
      if (current === undefined || !sameLocation(current.location, location)) return false;
      await this.db.put(indexKey(address), encodeValue({ ...current, lastPutSec }), this.#writeOptions);
      return true;
    });
  }

  async removeIf(address: ChunkAddress, location: Location, options: RemoveIfOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    return this.#exclusive(async () => {
      const current = await this.get(address);
      if (current === undefined || !sameLocation(current.location, location)) return false;
      if (options.idleBeforeSec !== undefined && current.lastPutSec >= options.idleBeforeSec) return false;
      await this.db.del(indexKey(address), this.#writeOptions);
      return true;
    });
  }

  async moveIf(address: ChunkAddress, from: Location, to: Location, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    return this.#exclusive(async () => {
      const current = await this.get(address);
      if (current === undefined || !sameLocation(current.location, from)) return false;
      await this.db.put(indexKey(address), encodeValue({ ...current, location: to }), this.#writeOptions);
      return true;
    });
  }

  async *list(options: AbortOptions = {}): AsyncIterable<IndexEntry> {
    const range = { gte: Uint8Array.of(INDEX_PREFIX), lt: Uint8Array.of(INDEX_PREFIX + 1) };
    for await (const [key, value] of this.db.iterator(range)) {
      throwIfAborted(options.signal);
      let cid: CID;
      try {
        cid = CID.decode(new Uint8Array(key.subarray(1)));
      } catch {
        continue; // not an index key of ours
      }
      if (isChunkAddress(cid)) yield decodeValue(cid, value);
    }
  }

  /** A scan still running stops; the database is closed only when this index owns it (else the engine closes it). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#scan?.catch(() => undefined);
    if (this.options.ownsDb) await this.db.close();
  }

  get #writeOptions(): { sync: boolean } {
    return { sync: this.options.syncWrites === true };
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(work, work);
    this.#lock = run.catch(() => undefined);
    return run;
  }
}
