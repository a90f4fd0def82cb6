import { type FileHandle, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import { TransientError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { MAX_CHUNK_BYTES } from '../address.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import { decodeSlotValue } from '../slots/level-format.js';
import { LevelSlotHistory } from '../slots/level-history.js';
import {
  decodeFooter,
  decodeHeader,
  decodeTrailerRecord,
  FOOTER_BYTES,
  HEADER_BYTES,
  PACK_ID_BYTES,
  PackFormatError,
  RECORD_OVERHEAD,
  type ScannedRecord,
  scanRecord,
  type TrailerEntry,
  trailerAndFooter,
} from './format.js';
import type { IndexEntry } from './index-store.js';
import { FsJournal } from './journal.js';
import { packFile, packOfFile } from './pack-files.js';
import { JournalSlotStore } from './journal-slot-store.js';
import { LevelObjectIndex } from './level-index.js';
import { PackChunkStore } from './pack-store.js';

export interface LocalEngineOptions {
  /** The node's LevelDB (store/slots): slots, the object index and the engine's marks. */
  slotsDir: string;
  /** Where pack files go (store/packs). */
  packsDir: string;
  /** Loose chunks of layouts v1/v2, read when the index has no entry (store/chunks). */
  legacy?: ChunkStore | undefined;
  /** fdatasync the journal (default true). */
  fsync?: boolean | undefined;
  packBytes?: number | undefined;
  maxObjectsPerPack?: number | undefined;
  logger?: Logger | undefined;
  /** The clock, in milliseconds (tests of deduplication age). */
  now?: (() => number) | undefined;
  /**
   * The longest the LevelDB writes of a durable commit (its index entries,
   * its slot swap) wait to be made with others' (ms; default
   * DEFER_WRITES_MS; tests of the deferral).
   */
  deferWritesMs?: number | undefined;
}

export const DEFAULT_PACK_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_OBJECTS_PER_PACK = 200_000;
/**
 * A durable commit's LevelDB writes (index entries, slot swap) are made
 * with others', for up to this many entries or this long after the first
 * (docs/spec/packs.md): each commit writing its own cost a small upload
 * 0.1–0.3 ms of CPU per write (bench/commit-path.ts).
 */
export const DEFER_WRITES_MS = 25;
const DEFERRED_INDEX_ENTRIES = 1024;

/** Marks in the LevelDB: 0x70 ("p") ‖ pack id → 0x01 once the pack is sealed and everything in it applied. */
const MARK_PREFIX = 0x70;
const APPLIED = Uint8Array.of(1);
/** Never holds a value (slot keys are 32 bytes, index and mark keys longer than 1): a synced delete of it syncs the log. */
const SYNC_KEY = Uint8Array.of(0x73);

function markKey(pack: string): Uint8Array {
  const key = new Uint8Array(1 + PACK_ID_BYTES);
  key[0] = MARK_PREFIX;
  key.set(Buffer.from(pack, 'hex'), 1);
  return key;
}

/**
 * The embedded default's storage (docs/spec/packs.md): one process owns the
 * node's LevelDB and appends to its own journal; objects go into packs and
 * slot swaps into the same journal, so a commit is one fdatasync.
 *
 * open() recovers first: every pack not marked applied (the ones a crash or
 * a stop left behind) is scanned, its torn tail cut off, its records applied
 * (object index entries; slot swaps newer than LevelDB's), sealed if it was
 * the active one, and marked applied with a synced LevelDB write, which also
 * makes every earlier unsynced index and slot write durable. Then a new
 * journal starts a fresh pack.
 *
 * One process at a time: LevelDB's LOCK file refuses a second opener, which
 * then reaches this one through the node's socket (slot-store-socket.ts).
 */
export class LocalEngine {
  readonly chunks: PackChunkStore;
  readonly slots: JournalSlotStore;
  readonly #db: Level<Uint8Array, Uint8Array>;
  readonly #journal: FsJournal;
  readonly #legacy: ChunkStore | undefined;
  #closing: Promise<void> | undefined;

  private constructor(
    db: Level<Uint8Array, Uint8Array>,
    journal: FsJournal,
    chunks: PackChunkStore,
    history: LevelSlotHistory,
    legacy: ChunkStore | undefined,
    deferWritesMs: number,
  ) {
    this.#db = db;
    this.#journal = journal;
    this.#legacy = legacy;
    this.chunks = chunks;
    this.slots = new JournalSlotStore(db, chunks, history, { deferMs: deferWritesMs });
  }

  static async open(options: LocalEngineOptions): Promise<LocalEngine> {
    const db = new Level<Uint8Array, Uint8Array>(options.slotsDir, { keyEncoding: 'view', valueEncoding: 'view' });
    const deferMs = options.deferWritesMs ?? DEFER_WRITES_MS;
    await db.open();
    try {
      await mkdir(options.packsDir, { recursive: true });
      const index = new LevelObjectIndex(db);
      const history = await LevelSlotHistory.load(db);
      await recover(db, index, history, options);
      index.startFilter();
      let engine!: LocalEngine;
      const journal = FsJournal.create({
        dir: options.packsDir,
        packBytes: options.packBytes ?? DEFAULT_PACK_BYTES,
        maxObjectsPerPack: options.maxObjectsPerPack ?? DEFAULT_MAX_OBJECTS_PER_PACK,
        fsync: options.fsync,
        // Once a sealed pack's last record is applied, nothing in it needs replaying: say so, durably.
        onSealed: async (pack, lastSeq) => {
          engine.chunks.afterSync(lastSeq, async () => {
            // Its index entries and swaps may wait to be written with later ones: write them first.
            await engine.chunks.flushDeferredIndex();
            await engine.slots.flushDeferred();
            await db.put(markKey(pack), APPLIED, { sync: true });
          });
        },
        onFailed: (err, tailCut) =>
          options.logger?.error(
            { event: 'journal_failed', err, tailCut },
            'writing the journal failed (a full or failing disk): every later upload is refused until a restart, which replays what was acknowledged',
          ),
      });
      const chunks = new PackChunkStore({
        sink: journal,
        index,
        legacy: options.legacy,
        now: options.now,
        closer: () => engine.close(),
        // Only a pack whose records are all applied (marked) may go: its slot swaps are in LevelDB then.
        removable: async (pack) => (await db.get(markKey(pack))) !== undefined,
        // A synced write makes the index's moves durable before the old copies go.
        retire: (pack) => db.del(markKey(pack), { sync: true }),
        // LevelDB syncs its log up to a synced write: a delete of a key nothing holds is the cheapest one.
        persistIndex: () => db.del(SYNC_KEY, { sync: true }),
        // One LevelDB write per commit cost a small commit a fifth of its CPU: see DEFER_WRITES_MS.
        deferIndexWrites: { entries: DEFERRED_INDEX_ENTRIES, ms: deferMs },
        onApplyFailed: (err) =>
          options.logger?.error(
            { event: 'commit_apply_failed', err },
            'writing durable commits to the index failed: every later upload is refused until a restart replays the journal',
          ),
      });
      engine = new LocalEngine(db, journal, chunks, history, options.legacy, deferMs);
      return engine;
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Why commits are refused until a restart, if they are: the journal broke
   * (a write or sync failed) or writing durable records to the index failed.
   * What was acknowledged before is durable either way; the restart replays it.
   */
  get commitFault(): TransientError | undefined {
    return this.#journal.failure ?? this.chunks.applyFailure;
  }

  /** Seals the active pack, applies everything, marks it, closes the database. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.chunks.flush().catch(() => undefined);
      await this.#journal.close();
      // The seal registered its mark as an effect of its last record: apply what is durable now.
      await this.chunks.applyDurable().catch(() => undefined);
      await this.slots.writeDeferred().catch(() => undefined);
      await this.slots.close();
      await this.#legacy?.close();
      await this.chunks.index.close();
      await this.#db.close();
    })();
    return this.#closing;
  }
}

/** Replays every pack not marked applied (see LocalEngine). */
async function recover(
  db: Level<Uint8Array, Uint8Array>,
  index: LevelObjectIndex,
  history: LevelSlotHistory,
  options: LocalEngineOptions,
): Promise<void> {
  for (const name of await readdir(options.packsDir)) {
    // A pack file is created under .new and renamed once its header is synced: a leftover .new holds nothing.
    if (name.endsWith('.pack.new')) await rm(path.join(options.packsDir, name), { force: true });
  }
  const packs = (await readdir(options.packsDir)).map(packOfFile).filter((p): p is string => p !== undefined);
  for (const pack of packs) {
    if ((await db.get(markKey(pack))) !== undefined) continue;
    await recoverPack(db, index, history, options, pack);
    await db.put(markKey(pack), APPLIED, { sync: true });
  }
}

async function recoverPack(
  db: Level<Uint8Array, Uint8Array>,
  index: LevelObjectIndex,
  history: LevelSlotHistory,
  options: LocalEngineOptions,
  pack: string,
): Promise<void> {
  const file = packFile(options.packsDir, pack);
  const fd = await open(file, 'r+');
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fd.read(header, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES || decodeHeader(header) !== pack) throw new PackFormatError(`${file} does not start with its own header`);
    const info = await fd.stat();
    const lastPutSec = Math.floor(info.mtimeMs / 1000);
    const trailer = await readTrailer(fd, info.size);
    let batch: IndexEntry[] = [];
    const indexBatch = async (force: boolean): Promise<void> => {
      if (batch.length >= 1000 || (force && batch.length > 0)) {
        await index.putMany(batch);
        batch = [];
      }
    };
    // A sealed pack (a valid footer and trailer) is never cut: its trailer lists every object, and a
    // damaged record in it is bit rot to report, not a torn tail. An open pack ends where its last
    // whole record ends.
    const end = trailer?.at ?? info.size;
    const entries: TrailerEntry[] = [];
    let position = HEADER_BYTES;
    while (position < end) {
      const record = await readRecord(fd, position);
      if (record === undefined || record.type === 'trailer') break;
      if (record.type === 'object') {
        entries.push({ address: record.address, offset: record.offset, length: record.length });
        batch.push({ address: record.address, location: { pack, offset: record.offset, length: record.length }, lastPutSec });
        await indexBatch(false);
      } else {
        await applySlot(db, history, record);
      }
      position = record.end;
    }
    if (trailer !== undefined) {
      if (position < trailer.at)
        options.logger?.error(
          { event: 'pack_damaged', pack, at: position },
          'a sealed pack has a damaged record; its objects stay listed by its trailer',
        );
      for (const e of trailer.entries)
        batch.push({ address: e.address, location: { pack, offset: e.offset, length: e.length }, lastPutSec });
      await indexBatch(true);
      return;
    }
    await indexBatch(true);
    // What follows the last whole record is a torn tail: never acknowledged (a record is acknowledged
    // only after a sync covering all of it). Cut it off, then seal the pack with the trailer it lacks.
    await fd.truncate(position);
    let at = position;
    for (const p of trailerAndFooter(entries, position)) {
      await fd.write(p, 0, p.length, at);
      at += p.length;
    }
    if (options.fsync !== false) await fd.datasync();
    options.logger?.warn(
      { event: 'pack_recovered', pack, objects: entries.length, bytes: position },
      'sealed a pack a stop or crash left open',
    );
  } finally {
    await fd.close();
  }
}

/** A swap newer than LevelDB's goes through the history like any swap: a fresh epoch, above every pin (docs/spec/snapshots.md). */
async function applySlot(
  db: Level<Uint8Array, Uint8Array>,
  history: LevelSlotHistory,
  record: Extract<ScannedRecord, { type: 'slot' }>,
): Promise<void> {
  const current = (await db.get(record.storageIndex)) as Uint8Array | undefined;
  const seq = current === undefined ? -1n : decodeSlotValue(record.storageIndex, current).seq;
  if (record.seq > seq) await history.applySwap(record.storageIndex, { seq: record.seq, record: record.record }, false);
}

/** A sealed pack's trailer (its entries and where it starts), or undefined for a pack without a valid one. */
async function readTrailer(fd: FileHandle, size: number): Promise<{ at: number; entries: TrailerEntry[] } | undefined> {
  if (size < HEADER_BYTES + FOOTER_BYTES) return undefined;
  const footer = Buffer.alloc(FOOTER_BYTES);
  await fd.read(footer, 0, FOOTER_BYTES, size - FOOTER_BYTES);
  try {
    const at = decodeFooter(footer, size);
    const record = Buffer.allocUnsafe(size - FOOTER_BYTES - at);
    await fd.read(record, 0, record.length, at);
    return { at, entries: decodeTrailerRecord(record) };
  } catch (err) {
    if (err instanceof PackFormatError) return undefined;
    throw err;
  }
}

/** The record at `position`, or undefined at the end of what was written whole. */
async function readRecord(fd: FileHandle, position: number): Promise<ScannedRecord | undefined> {
  const head = Buffer.alloc(5);
  const got = await fd.read(head, 0, 5, position);
  if (got.bytesRead < 5) return undefined;
  const n = head.readUInt32BE(0);
  if (n > MAX_CHUNK_BYTES + 64 * 1024 * 1024) return undefined; // not a length any writer wrote: torn or garbage
  const whole = Buffer.allocUnsafe(RECORD_OVERHEAD + n);
  const read = await fd.read(whole, 0, whole.length, position);
  if (read.bytesRead < whole.length) return undefined;
  try {
    return scanRecord(whole, 0, position);
  } catch (err) {
    if (err instanceof PackFormatError) return undefined;
    throw err;
  }
}

/** Size of a pack file, for tests and status. */
export async function packSize(packsDir: string, pack: string): Promise<number> {
  try {
    return (await stat(packFile(packsDir, pack))).size;
  } catch {
    throw new TransientError(`no pack ${pack}`);
  }
}
