import type { Level } from 'level';
import { CID } from 'multiformats/cid';
import { type AbortOptions, IntegrityError, throwIfAborted } from '../../errors.js';
import { isChunkAddress } from '../address.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import { type Location, PACK_ID_BYTES } from './format.js';
import { type IndexEntry, type ObjectIndex, sameLocation } from './index-store.js';

/**
 * The object index in the node's LevelDB (the one that holds the slots),
 * docs/spec/packs.md:
 *
 *     key   = 0x6f ("o") ‖ binary CID (36 bytes)              37 bytes; slot keys are 32
 *     value = pack id (8) ‖ u64 offset ‖ u32 length ‖ u32 last put (seconds)
 *
 * Writes are not synced: the journal is the durable copy, and the engine's
 * synced marks (local-engine.ts) make them durable in batches. removeIf and
 * putMany run one at a time (a mutex), so a removal never undoes a newer put.
 */
export const INDEX_PREFIX = 0x6f;
const VALUE_BYTES = PACK_ID_BYTES + 8 + 4 + 4;

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

export class LevelObjectIndex implements ObjectIndex {
  #lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly db: Level<Uint8Array, Uint8Array>) {}

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<IndexEntry | undefined> {
    throwIfAborted(options.signal);
    const value = (await this.db.get(indexKey(address))) as Uint8Array | undefined;
    return value === undefined ? undefined : decodeValue(address, value);
  }

  putMany(entries: readonly IndexEntry[], options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    return this.#exclusive(async () => {
      if (entries.length === 0) return;
      await this.db.batch(entries.map((e) => ({ type: 'put' as const, key: indexKey(e.address), value: encodeValue(e) })));
    });
  }

  removeIf(address: ChunkAddress, location: Location, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    return this.#exclusive(async () => {
      const current = await this.get(address);
      if (current === undefined || !sameLocation(current.location, location)) return false;
      await this.db.del(indexKey(address));
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

  /** The database belongs to the engine, which closes it. */
  async close(): Promise<void> {}

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(work, work);
    this.#lock = run.catch(() => undefined);
    return run;
  }
}
