import { type AbortOptions, IntegrityError, InvalidInputError, NotFoundError, TransientError, throwIfAborted } from '../../errors.js';
import {
  addressKey,
  addressOfChunk,
  assertChunkAddress,
  MAX_CHUNK_BYTES,
  verifyChunkDigest,
  verifyChunkInPlace,
  verifyOwnedChunk,
} from '../address.js';
import { copyBytes } from '../../util/copy-bytes.js';
import { KeyedMutex } from '../../util/keyed-mutex.js';
import type {
  ChunkAddress,
  ChunkStat,
  ChunkStore,
  ChunkStoreFeatures,
  CompactOptions,
  CompactResult,
  PutOptions,
  RepackOptions,
  RepackResult,
} from '../chunks/chunk-store.js';
import { objectRecord } from './format.js';
import type { IndexEntry, ObjectIndex } from './index-store.js';
import { LocationHints } from './location-hints.js';
import { compactPacks, type PackMaintenance, repackLegacy } from './pack-maintenance.js';
import type { PackSink } from './sink.js';

export interface PackChunkStoreOptions {
  sink: PackSink;
  index: ObjectIndex;
  /**
   * Where objects of an older layout live (loose files of layouts v1/v2, S3
   * chunks/ objects): read when the index has no entry, never written.
   */
  legacy?: ChunkStore | undefined;
  /**
   * Whether a put of bytes the index does not hold asks the legacy store
   * first (and refreshes a young copy there instead of packing it). Default
   * true. False on S3, where that question is a HEAD request per new object
   * whose answer is nearly always no: a packed copy costs space, not
   * correctness, and reads still fall back to the legacy store.
   */
  dedupAgainstLegacy?: boolean | undefined;
  /**
   * A put deduplicates against a stored copy only when that copy's last put
   * is at most this old (docs/spec/packs.md, Deduplication): half the gc
   * grace period. Default 12 h.
   */
  dedupMaxAgeSeconds?: number | undefined;
  /** The clock, in milliseconds (tests). */
  now?: (() => number) | undefined;
  /** Told once when flushDurable's background apply fails (the engine logs it); see there. */
  onApplyFailed?: ((err: unknown) => void) | undefined;
  /** What close() does instead of closing the sink, index and legacy store itself (an engine that owns them). */
  closer?: (() => Promise<void>) | undefined;
  /**
   * Whether compaction may delete a sealed pack once nothing live is left
   * in it (the engine says no until everything the pack held is applied
   * durably elsewhere). Default: always.
   */
  removable?: ((pack: string) => Promise<boolean>) | undefined;
  /**
   * Runs after compaction re-pointed the index away from a pack and before
   * the pack is deleted: the engine makes the index writes durable there.
   */
  retire?: ((pack: string) => Promise<void>) | undefined;
  /**
   * Makes every index write made so far durable (the engine: a synced
   * LevelDB write). repack() runs it before it removes loose copies.
   * Default: nothing (an index that is durable on write, or a test's).
   */
  persistIndex?: (() => Promise<void>) | undefined;
  /**
   * Lets the index writes of flushDurable's applies wait to be made
   * together, for up to `entries` durable entries or `ms` after the first
   * (the engine, whose journal is their durable copy and replays them):
   * meanwhile they are answered from memory, as before their sync. flush()
   * and applyDurable() write them at once. Default: each apply writes its
   * own.
   */
  deferIndexWrites?: { entries: number; ms: number } | undefined;
}

export const DEFAULT_DEDUP_MAX_AGE_SECONDS = 12 * 3600;

interface Pending {
  entry: IndexEntry;
  seq: number;
}

/**
 * Objects in packs (docs/spec/packs.md): the ChunkStore every v3 node uses,
 * over a sink (the fs journal, or packs on S3) and an object index (LevelDB
 * or PostgreSQL).
 *
 * put appends the object to the sink and resolves once its bytes are out of
 * the caller's buffer; it is durable after the next flush() (or, on the
 * embedded default, the next slot swap, which syncs the same journal).
 * Until then its index entry is held here, not in the index: the index is
 * never ahead of what is durable, so a deduplicating put after a crash can
 * never trust an entry whose bytes were lost.
 *
 * Bounds: the pending entries are the objects put since the last flush
 * (a commit's worth; a large upload flushes at its CLOSE, so up to one
 * entry per chunk of it, 100 bytes each), and with deferIndexWrites those
 * of the deferral (its `entries`).
 */
export class PackChunkStore implements ChunkStore {
  readonly features: ChunkStoreFeatures = { delete: true, list: true };
  readonly #sink: PackSink;
  readonly #index: ObjectIndex;
  readonly #legacy: ChunkStore | undefined;
  readonly #dedupLegacy: boolean;
  readonly #maxAge: number;
  readonly #now: () => number;
  readonly #closer: (() => Promise<void>) | undefined;
  readonly #removable: (pack: string) => Promise<boolean>;
  readonly #retire: (pack: string) => Promise<void>;
  readonly #persistIndex: () => Promise<void>;
  readonly #onApplyFailed: ((err: unknown) => void) | undefined;
  /**
   * Serializes, per address, what reads an index entry and acts on it: a
   * put deciding to deduplicate (and refreshing the entry's age), gc
   * deleting the entry, compaction moving it. So gc never deletes what a
   * put just relied on, and compaction never resurrects what gc deleted.
   */
  readonly #keys = new KeyedMutex();
  /** Appended, not yet known durable: by address string. */
  readonly #pending = new Map<string, Pending>();
  /** What the owner of other records in the sink does once they are durable (the journal slot store's swaps), by seq. */
  #effects: { seq: number; apply(): Promise<void> }[] = [];
  #committed = 0;
  #committing: Promise<void> = Promise.resolve();
  /** Set when flushDurable's background apply failed; see there. */
  #applyFailed: TransientError | undefined;
  readonly #deferIndex: { entries: number; ms: number } | undefined;
  /** Whether durable entries wait in #pending for a deferred index write, and the timer that makes it. */
  #indexDeferred = false;
  #indexTimer: NodeJS.Timeout | undefined;
  /** Index entries looked up ahead for sequential readers (prefetch). */
  readonly #hints: LocationHints;

  constructor(options: PackChunkStoreOptions) {
    this.#sink = options.sink;
    this.#index = options.index;
    this.#legacy = options.legacy;
    this.#dedupLegacy = options.dedupAgainstLegacy ?? true;
    this.#maxAge = options.dedupMaxAgeSeconds ?? DEFAULT_DEDUP_MAX_AGE_SECONDS;
    this.#now = options.now ?? Date.now;
    this.#closer = options.closer;
    this.#removable = options.removable ?? (async () => true);
    this.#retire = options.retire ?? (async () => undefined);
    this.#persistIndex = options.persistIndex ?? (async () => undefined);
    this.#onApplyFailed = options.onApplyFailed;
    this.#deferIndex = options.deferIndexWrites;
    this.#hints = new LocationHints(this.#index, this.#now);
  }

  get index(): ObjectIndex {
    return this.#index;
  }

  get sink(): PackSink {
    return this.#sink;
  }

  async put(bytes: Uint8Array, options: PutOptions = {}): Promise<ChunkAddress> {
    throwIfAborted(options.signal);
    if (bytes.length > MAX_CHUNK_BYTES) throw new InvalidInputError(`chunk of ${bytes.length} bytes exceeds ${MAX_CHUNK_BYTES}`);
    // A sealed chunk in its slot is hashed on a thread; anything else here, without yielding first.
    const computed = addressOfChunk(bytes);
    const address = computed instanceof Promise ? await computed : computed;
    const key = addressKey(address);
    const pending = this.#pending.get(key);
    if (pending !== undefined) {
      await this.#sink.written(pending.seq);
      return address;
    }
    // A unique object (a directory node) cannot have a copy: no index lookup (a statement, on PostgreSQL).
    if (options.unique !== true && (await this.#keys.run(key, () => this.#reuseFreshCopy(address, bytes, options)))) return address;
    const appended = this.#sink.append(objectRecord(address, bytes), address);
    const entry: IndexEntry = {
      address,
      location: { pack: appended.pack, offset: appended.payload, length: bytes.length },
      lastPutSec: this.#nowSec(),
    };
    this.#pending.set(key, { entry, seq: appended.seq });
    await this.#sink.written(appended.seq);
    return address;
  }

  /** The highest seq whose index entries and effects are applied: everything up to it is durable and visible. */
  get committedSeq(): number {
    return this.#committed;
  }

  /**
   * Runs `apply` once the sink record `seq` (appended by the caller) is
   * durable, in seq order with the index entries of objects: the journal slot
   * store applies a swap only after the sync covering it (and everything
   * before it) completed.
   */
  afterSync(seq: number, apply: () => Promise<void>): void {
    this.#effects.push({ seq, apply });
  }

  /** Makes every put that resolved before this call durable, and indexes it. */
  async flush(options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    this.throwIfApplyFailed();
    const covered = await this.#sink.sync();
    await this.#commitUpTo(covered, options);
  }

  /**
   * Makes every put that resolved before this call durable, and resolves:
   * the index entries and the afterSync effects that the sync makes due are
   * applied after it, in order, off the caller's path (settled() waits for
   * them; index writes that deferIndexWrites lets wait are made later, or
   * by writeDeferredIndex). Meanwhile get and has find the objects among
   * the pending ones.
   * For a caller that keeps its own effect visible until it is applied
   * (JournalSlotStore), so that acknowledging a commit waits for its one
   * fdatasync and not also for the LevelDB writes after it: those took
   * 0.45 ms of a small upload's close.
   *
   * It does wait for the writes of the syncs before its own: a caller is
   * acknowledged with at most its own sync's writes still to do, so the
   * backlog is bounded by the commits in flight.
   *
   * Once such background work has failed, this and flush() reject: what
   * the journal holds is durable, but this process can no longer say what
   * is applied (a restart's recovery replays it).
   */
  async flushDurable(options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    this.throwIfApplyFailed();
    const covered = await this.#sink.sync();
    const before = this.#committing;
    this.#watch(this.#commitUpTo(covered, {}, true));
    // Never more than one sync's applies behind (deferred index writes aside, bounded by their own
    // limits): without this wait, commits whose sync costs nothing (fsync off) ran ahead of LevelDB
    // without bound, and each apply scanned the growing backlog.
    await before;
  }

  /**
   * Runs `apply` after every apply queued so far, off the caller's path, as
   * flushDurable's background work: settled() waits for it, and a failure
   * is a failed background apply (later commits are refused, see there).
   */
  applyInBackground(apply: () => Promise<void>): void {
    this.#watch(this.#chain(apply));
  }

  /**
   * Writes the index entries a deferral holds (deferIndexWrites) after the
   * applies queued before this call, and waits for all of it.
   */
  async writeDeferredIndex(): Promise<void> {
    this.applyInBackground(() => this.#indexDurable({}));
    await this.settled();
  }

  /**
   * The same, now: only from within an apply (an afterSync effect), as the
   * engine's mark of a sealed pack, which must not be written before the
   * pack's entries are.
   */
  flushDeferredIndex(): Promise<void> {
    return this.#indexDurable({});
  }

  /** Waits until everything made durable so far is applied (flushDurable's background work included). */
  async settled(): Promise<void> {
    await this.#committing;
    this.throwIfApplyFailed();
  }

  /** The TransientError of a failed background apply (see flushDurable), once there is one: the gateway's /healthz reports it. */
  get applyFailure(): TransientError | undefined {
    return this.#applyFailed;
  }

  /** Throws the TransientError of a failed background apply (see flushDurable); a caller checks before appending. */
  throwIfApplyFailed(): void {
    if (this.#applyFailed !== undefined) throw this.#applyFailed;
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<Uint8Array> {
    return this.#find(
      address,
      options,
      (entry) => this.#readVerified(address, entry),
      (legacy) => legacy.get(address, options),
    );
  }

  /**
   * get, into `target`. Out of a pack the bytes are read into it and hashed
   * where they lie; a loose chunk of layout v1/v2 is read whole and copied
   * in (a copy that `capstan repack` ends).
   */
  async getInto(address: ChunkAddress, target: Uint8Array, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    return this.#find(
      address,
      options,
      (entry) => this.#readVerifiedInto(address, entry, target),
      async (legacy) => {
        const bytes = await legacy.get(address, options);
        if (bytes.length > target.length) return undefined;
        copyBytes(target, bytes);
        return target.subarray(0, bytes.length);
      },
    );
  }

  /** Looks up where the chunks are in one index getMany, for the reads that follow (location-hints.ts). */
  prefetch(addresses: readonly ChunkAddress[]): void {
    this.#hints.add(addresses);
  }

  /**
   * Where get and getInto look: the pending objects, a prefetch's entry if
   * there is one, the index (asked again once if the pack went meanwhile: gc
   * moved the object), then the loose chunks of an older layout.
   */
  async #find<T>(
    address: ChunkAddress,
    options: AbortOptions,
    read: (entry: IndexEntry) => Promise<T>,
    readLegacy: (legacy: ChunkStore) => Promise<T>,
  ): Promise<T> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const pending = this.#pending.get(addressKey(address));
    if (pending !== undefined) return read(pending.entry);
    const hint = this.#hints.take(address);
    const hinted = hint && (await hint);
    if (hinted !== undefined) {
      try {
        return await read(hinted);
      } catch (err) {
        // Its pack is gone (compaction moved the object since the lookup): the index, as for any read.
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const entry = await this.#index.get(address, options);
      if (entry === undefined) break;
      try {
        return await read(entry);
      } catch (err) {
        // The pack is gone (gc moved the object meanwhile): ask the index again, once.
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    if (this.#legacy !== undefined) {
      try {
        return await readLegacy(this.#legacy);
      } catch (err) {
        // Moved into a pack between our index lookup and this one (repack): the index has it now.
        if (!(err instanceof NotFoundError)) throw err;
        const entry = await this.#index.get(address, options);
        if (entry === undefined) throw err;
        return read(entry);
      }
    }
    throw new NotFoundError(`no chunk ${addressKey(address)}`);
  }

  async has(address: ChunkAddress, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    if (this.#pending.has(addressKey(address))) return true;
    if ((await this.#index.get(address, options)) !== undefined) return true;
    if (this.#legacy === undefined) return false;
    // Asked again after the legacy store: repack may have moved it between the two lookups.
    return (await this.#legacy.has(address, options)) || (await this.#index.get(address, options)) !== undefined;
  }

  /** Forgets the object: its index entry goes now, its bytes at the next compact(). */
  async delete(address: ChunkAddress, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    await this.#keys.run(addressKey(address), async () => {
      this.#pending.delete(addressKey(address));
      const entry = await this.#index.get(address, options);
      if (entry !== undefined) await this.#index.removeIf(address, entry.location, options);
      this.#hints.forget(address);
    });
    await this.#legacy?.delete(address, options);
  }

  async deleteIfIdleSince(address: ChunkAddress, cutoffMs: number, options: AbortOptions = {}): Promise<number | undefined> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const key = addressKey(address);
    const packed = await this.#keys.run(key, async () => {
      if (this.#pending.has(key)) return { kept: true };
      const entry = await this.#index.get(address, options);
      if (entry === undefined) return undefined;
      const idleBeforeSec = Math.ceil(cutoffMs / 1000);
      // Conditional in the index itself: a put on another gateway refreshing the entry meanwhile wins.
      const removed = await this.#index.removeIf(address, entry.location, { ...options, idleBeforeSec });
      if (removed) this.#hints.forget(address);
      return removed ? { freed: entry.location.length } : { kept: true };
    });
    if (packed !== undefined) return 'freed' in packed ? packed.freed : undefined;
    return this.#legacy?.deleteIfIdleSince?.(address, cutoffMs, options);
  }

  /**
   * Gives back the space of deleted objects (pack-maintenance.ts): a sealed
   * pack with no live object is deleted; one with less than `threshold` of
   * its bytes live has them copied into the journal first.
   */
  compact(options: CompactOptions = {}): Promise<CompactResult> {
    return compactPacks(this.#maintenance(), options);
  }

  /** Moves the loose objects of the older layout into packs (pack-maintenance.ts). */
  repack(options: RepackOptions = {}): Promise<RepackResult> {
    return repackLegacy(this.#maintenance(), options);
  }

  async stat(address: ChunkAddress, options: AbortOptions = {}): Promise<ChunkStat | undefined> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const pending = this.#pending.get(addressKey(address));
    const entry = pending?.entry ?? (await this.#index.get(address, options));
    if (entry !== undefined) return { bytes: entry.location.length, lastPutMs: entry.lastPutSec * 1000 };
    const loose = await this.#legacy?.stat?.(address, options);
    if (loose !== undefined || this.#legacy === undefined) return loose;
    // Repack may have moved it between the two lookups.
    const moved = await this.#index.get(address, options);
    return moved && { bytes: moved.location.length, lastPutMs: moved.lastPutSec * 1000 };
  }

  async *list(options: AbortOptions = {}): AsyncIterable<ChunkAddress> {
    const seen = new Set<string>();
    for await (const entry of this.#index.list(options)) {
      seen.add(addressKey(entry.address));
      yield entry.address;
    }
    for (const [key, p] of [...this.#pending]) {
      if (!seen.has(key)) yield p.entry.address;
    }
    if (this.#legacy === undefined) return;
    for await (const address of this.#legacy.list(options)) {
      if (!seen.has(addressKey(address)) && !this.#pending.has(addressKey(address))) yield address;
    }
  }

  async usage(options: AbortOptions = {}): Promise<{ chunks: number; bytes: number }> {
    let chunks = 0;
    let bytes = 0;
    for await (const entry of this.#index.list(options)) {
      if (this.#pending.has(addressKey(entry.address))) continue;
      chunks++;
      bytes += entry.location.length;
    }
    for (const p of this.#pending.values()) {
      chunks++;
      bytes += p.entry.location.length;
    }
    const legacy = await this.#legacy?.usage?.(options);
    return { chunks: chunks + (legacy?.chunks ?? 0), bytes: bytes + (legacy?.bytes ?? 0) };
  }

  /** Applies the index entries and effects of everything the sink already made durable (no new sync). */
  async applyDurable(): Promise<void> {
    await this.#commitUpTo(this.#sink.syncedSeq, {});
  }

  async close(): Promise<void> {
    if (this.#closer !== undefined) return this.#closer();
    await this.flush().catch(() => undefined);
    await this.#sink.close();
    await this.#index.close();
    await this.#legacy?.close();
  }

  /**
   * Whether a copy young enough to deduplicate against is stored; if so,
   * its age is refreshed (the ChunkStore stat contract: gc's grace counts
   * from the last put, deduplicated or not). Runs under the address's lock.
   */
  async #reuseFreshCopy(address: ChunkAddress, bytes: Uint8Array, options: AbortOptions): Promise<boolean> {
    const entry = await this.#index.get(address, options);
    const now = this.#nowSec();
    if (entry !== undefined) {
      if (now - entry.lastPutSec > this.#maxAge) return false;
      // Not durable by itself, and need not be: an upload in flight does not survive a crash either.
      // Conditional: gc (on any gateway) may have removed the entry since the get; then store a copy.
      if (entry.lastPutSec === now) return true;
      return this.#index.refreshIf(address, entry.location, now, options);
    }
    if (!this.#dedupLegacy || this.#legacy?.stat === undefined) return false;
    const stat = await this.#legacy.stat(address, options);
    if (stat === undefined || this.#now() - stat.lastPutMs > this.#maxAge * 1000) return false;
    // A loose chunk's age is refreshed by putting the same bytes there again (its store's dedup touches it).
    await this.#legacy.put(bytes, options);
    return true;
  }

  /** What compaction and repack work with: this store's parts, and its per-address lock. */
  #maintenance(): PackMaintenance {
    return {
      sink: this.#sink,
      index: this.#index,
      legacy: this.#legacy,
      keys: this.#keys,
      isPending: (key) => this.#pending.has(key),
      removable: this.#removable,
      retire: this.#retire,
      persistIndex: this.#persistIndex,
      readVerified: (address, entry) => this.#readVerified(address, entry),
    };
  }

  async #readVerified(address: ChunkAddress, entry: IndexEntry): Promise<Uint8Array> {
    const bytes = await this.#sink.read(entry.location);
    if (bytes.length !== entry.location.length) throw new IntegrityError(addressKey(address), 'chunk');
    return verifyOwnedChunk(address, bytes);
  }

  async #readVerifiedInto(address: ChunkAddress, entry: IndexEntry, target: Uint8Array): Promise<Uint8Array | undefined> {
    const { length } = entry.location;
    if (length > target.length) return undefined;
    const view = target.subarray(0, length);
    let sha256: Uint8Array | undefined;
    if (this.#sink.readInto !== undefined) {
      const r = await this.#sink.readInto(entry.location, view);
      if (r.read !== length) throw new IntegrityError(addressKey(address), 'chunk');
      sha256 = r.sha256;
    } else {
      // A sink that reads into its own buffers (packs in S3 or a shared folder): one copy.
      const bytes = await this.#sink.read(entry.location);
      if (bytes.length !== length) throw new IntegrityError(addressKey(address), 'chunk');
      copyBytes(view, bytes);
    }
    if (sha256 === undefined) await verifyChunkInPlace(address, view);
    else verifyChunkDigest(address, sha256);
    return view;
  }

  /** Records the failure of background work (flushDurable, applyInBackground): the first one is kept and told. */
  #watch(work: Promise<void>): void {
    work.catch((err: unknown) => {
      if (this.#applyFailed !== undefined) return;
      this.#applyFailed = new TransientError('applying durable records to the index failed', { cause: err });
      this.#onApplyFailed?.(err);
    });
  }

  /** Runs `work` after everything applied before it; settled() waits for it. */
  #chain(work: () => Promise<void>): Promise<void> {
    const run = this.#committing.then(work);
    this.#committing = run.catch(() => undefined);
    return run;
  }

  /**
   * Moves pending entries covered by a sync into the index, once, in order,
   * then runs the effects due. `mayDefer` (flushDurable): the index write
   * may wait for more (deferIndexWrites).
   */
  #commitUpTo(covered: number, options: AbortOptions, mayDefer = false): Promise<void> {
    return this.#chain(async () => {
      // Effects registered after their record was already covered (a seal's mark) are still due.
      if (covered <= this.#committed && !this.#indexDeferred && !this.#effects.some((e) => e.seq <= covered)) return;
      let waiting = 0;
      for (const p of this.#pending.values()) if (p.seq <= covered) waiting++;
      if (mayDefer && this.#deferIndex !== undefined && waiting < this.#deferIndex.entries) {
        if (waiting > 0 && !this.#indexDeferred) {
          this.#indexDeferred = true;
          const { ms } = this.#deferIndex;
          this.#indexTimer = setTimeout(() => this.applyInBackground(() => this.#indexDurable({})), ms).unref();
        }
      } else if (waiting > 0 || this.#indexDeferred) {
        await this.#indexDurable(options, covered);
      }
      const due = this.#effects.filter((e) => e.seq <= covered).sort((a, b) => a.seq - b.seq);
      this.#effects = this.#effects.filter((e) => e.seq > covered);
      for (const effect of due) await effect.apply();
      this.#committed = Math.max(this.#committed, covered);
    });
  }

  /**
   * Writes the index entries of every durable object still pending: up to
   * `covered` (a sync's) and whatever the sink has synced since, so all of
   * a deferral's, and any of a sync whose apply is still queued (which then
   * finds them done).
   */
  async #indexDurable(options: AbortOptions, upTo = 0): Promise<void> {
    clearTimeout(this.#indexTimer);
    this.#indexTimer = undefined;
    const covered = Math.max(upTo, this.#sink.syncedSeq);
    const entries: IndexEntry[] = [];
    const done: string[] = [];
    for (const [key, p] of this.#pending) {
      if (p.seq <= covered) {
        entries.push(p.entry);
        done.push(key);
      }
    }
    if (entries.length > 0) await this.#index.putMany(entries, options);
    for (const key of done) {
      const p = this.#pending.get(key);
      if (p !== undefined && p.seq <= covered) this.#pending.delete(key);
    }
    this.#indexDeferred = false;
  }

  #nowSec(): number {
    return Math.floor(this.#now() / 1000);
  }
}
