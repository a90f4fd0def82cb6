import { type AbortOptions, IntegrityError, NotFoundError, throwIfAborted } from '../../errors.js';
import type { KeyedMutex } from '../../util/keyed-mutex.js';
import { addressKey } from '../address.js';
import type { ChunkAddress, ChunkStore, CompactOptions, CompactResult, RepackOptions, RepackResult } from '../chunks/chunk-store.js';
import { objectRecord } from './format.js';
import type { IndexEntry, ObjectIndex } from './index-store.js';
import type { PackSink } from './sink.js';

/**
 * The two maintenance passes of a pack store (docs/spec/packs.md):
 * compaction, which gc runs to give back the space of deleted objects, and
 * repack, which moves a layout v1/v2 store's loose chunks into packs. Both
 * run beside live puts and reads; PackChunkStore (pack-store.ts) hands
 * them its parts and its per-address lock, under which each decision about
 * one object is made, so a put deduplicating against an object, gc
 * deleting it and these passes moving it never interleave.
 */

/** Objects per repack batch, and bytes: one journal sync and one synced index write each. */
export const REPACK_BATCH_OBJECTS = 1024;
export const REPACK_BATCH_BYTES = 32 * 1024 * 1024;

/** What compaction and repack need of the store they maintain (PackChunkStore's parts). */
export interface PackMaintenance {
  sink: PackSink;
  index: ObjectIndex;
  /** The older layout's loose chunks (repack's source), if the node has one. */
  legacy: ChunkStore | undefined;
  /** The store's per-address lock (see PackChunkStore). */
  keys: KeyedMutex;
  /** Whether a put of the object whose addressKey this is was appended but is not durable yet. */
  isPending(key: string): boolean;
  /** PackChunkStoreOptions.removable, retire and persistIndex. */
  removable(pack: string): Promise<boolean>;
  retire(pack: string): Promise<void>;
  persistIndex(): Promise<void>;
  /** The object's bytes at `entry`, read and checked against its address. */
  readVerified(address: ChunkAddress, entry: IndexEntry): Promise<Uint8Array>;
}

/**
 * Gives back the space of deleted objects: a sealed pack with no live
 * object is deleted; one with less than `threshold` of its bytes live has
 * them copied into the journal first, synced, re-indexed, then deleted.
 * A reader that found the old location meanwhile gets NotFoundError from
 * the sink and asks the index again (get).
 */
export async function compactPacks(store: PackMaintenance, options: CompactOptions = {}): Promise<CompactResult> {
  const threshold = options.threshold ?? 0.5;
  const result: CompactResult = { rewritten: 0, removed: 0, copiedBytes: 0, freedBytes: 0 };
  // Removable first, then the index: a pack is marked only after every object in it was indexed, so
  // counting after the check never misses an object that was still pending when the pack was listed.
  const packs: { pack: string; bytes: number }[] = [];
  for (const p of await store.sink.sealedPacks()) if (await store.removable(p.pack)) packs.push(p);
  const live = new Map<string, number>(packs.map((p) => [p.pack, 0]));
  for await (const entry of store.index.list(options)) {
    const bytes = live.get(entry.location.pack);
    if (bytes !== undefined) live.set(entry.location.pack, bytes + entry.location.length);
  }
  const chosen = packs.filter(({ pack, bytes }) => (live.get(pack) ?? 0) < bytes * threshold);
  // One more pass over the index for the objects to move, not one per pack rewritten.
  const moving = new Map<string, IndexEntry[]>();
  if (!options.dryRun) {
    for (const { pack } of chosen) if ((live.get(pack) ?? 0) > 0) moving.set(pack, []);
    if (moving.size > 0) {
      for await (const entry of store.index.list(options)) moving.get(entry.location.pack)?.push(entry);
    }
  }
  for (const { pack, bytes } of chosen) {
    throwIfAborted(options.signal);
    const liveBytes = live.get(pack) ?? 0;
    if (liveBytes === 0) result.removed++;
    else result.rewritten++;
    result.freedBytes += bytes;
    if (options.dryRun) {
      result.copiedBytes += liveBytes;
      continue;
    }
    result.copiedBytes += await moveOut(store, moving.get(pack) ?? [], options);
    await store.retire(pack);
    await store.sink.removePack(pack);
  }
  return result;
}

/**
 * Moves the loose objects of the older layout into packs (docs/spec/packs.md,
 * Legacy stores and migration), a batch at a time: each object is read
 * (and its address checked) and appended to the journal; the journal is
 * synced; then, under each object's lock, it is indexed, unless a put
 * indexed a copy of its own meanwhile (then ours is garbage) or gc removed
 * the loose file (then so is ours); one synced index write; only then are
 * the loose files removed. A crash at any point leaves every object
 * readable from at least one of the two places. Bounds: one batch
 * (REPACK_BATCH_OBJECTS objects or REPACK_BATCH_BYTES bytes) in flight.
 */
export async function repackLegacy(store: PackMaintenance, options: RepackOptions = {}): Promise<RepackResult> {
  const result: RepackResult = { moved: 0, movedBytes: 0, dropped: 0, skipped: 0, damaged: 0 };
  const legacy = store.legacy;
  if (legacy === undefined) return result;
  let batch: { address: ChunkAddress; location: IndexEntry['location'] }[] = [];
  let batchBytes = 0;
  const redundant: ChunkAddress[] = [];
  const commit = async (): Promise<void> => {
    if (batch.length > 0) await store.sink.sync();
    const indexed: ChunkAddress[] = [];
    for (const moved of batch) {
      const key = addressKey(moved.address);
      await store.keys.run(key, async () => {
        if (store.isPending(key) || (await store.index.get(moved.address, options)) !== undefined) return;
        // The loose file's age, read now: a deduplicating put may have refreshed it since we copied it.
        const stat = await legacy.stat?.(moved.address, options);
        if (stat === undefined) return; // gc removed it as garbage meanwhile: so is the copy
        await store.index.putMany([{ ...moved, lastPutSec: Math.floor(stat.lastPutMs / 1000) }], options);
        indexed.push(moved.address);
        result.movedBytes += moved.location.length;
      });
    }
    await store.persistIndex();
    for (const address of [...indexed, ...redundant]) {
      // Under the lock: a put deciding to refresh the loose copy must see the index entry instead.
      await store.keys.run(addressKey(address), () => legacy.delete(address, options));
    }
    result.moved += indexed.length;
    result.dropped += redundant.length;
    batch = [];
    batchBytes = 0;
    redundant.length = 0;
  };
  for await (const address of legacy.list(options)) {
    throwIfAborted(options.signal);
    if (options.limit !== undefined && result.moved + result.dropped + batch.length + redundant.length >= options.limit) break;
    const key = addressKey(address);
    // A put of these bytes in flight: its own copy is on its way into a pack; leave the loose one for next time.
    if (store.isPending(key)) {
      result.skipped++;
      continue;
    }
    if ((await store.index.get(address, options)) !== undefined) {
      if (options.dryRun) result.dropped++;
      else redundant.push(address);
      continue;
    }
    if (options.dryRun) {
      const stat = await legacy.stat?.(address, options);
      if (stat === undefined) continue;
      result.moved++;
      result.movedBytes += stat.bytes;
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = await legacy.get(address, options);
    } catch (err) {
      if (err instanceof NotFoundError) continue; // gc removed it while we listed
      if (!(err instanceof IntegrityError)) throw err;
      result.skipped++;
      result.damaged++;
      continue;
    }
    const appended = store.sink.append(objectRecord(address, bytes), address);
    await store.sink.written(appended.seq);
    batch.push({ address, location: { pack: appended.pack, offset: appended.payload, length: bytes.length } });
    batchBytes += bytes.length;
    if (batch.length + redundant.length >= REPACK_BATCH_OBJECTS || batchBytes >= REPACK_BATCH_BYTES) await commit();
  }
  if (!options.dryRun) await commit();
  return result;
}

/** Copies `moving` (what the index placed in one pack) into the journal, syncs, and re-points the index. */
async function moveOut(store: PackMaintenance, moving: readonly IndexEntry[], options: AbortOptions): Promise<number> {
  let copied = 0;
  const moved: { from: IndexEntry; to: IndexEntry }[] = [];
  for (const from of moving) {
    const bytes = await store.readVerified(from.address, from);
    const appended = store.sink.append(objectRecord(from.address, bytes), from.address);
    moved.push({ from, to: { ...from, location: { pack: appended.pack, offset: appended.payload, length: from.location.length } } });
    copied += bytes.length;
  }
  await store.sink.sync();
  for (const { from, to } of moved) {
    // Deleted meanwhile (gc) or put anew elsewhere: the move loses and the copy is garbage for the next run.
    await store.keys.run(addressKey(from.address), () => store.index.moveIf(from.address, from.location, to.location, options));
  }
  return copied;
}
