import { randomBytes } from 'node:crypto';
import { fdatasyncSync, ftruncateSync, writevSync } from 'node:fs';
import { type FileHandle, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { InvalidInputError, TransientError } from '../../errors.js';
import { copyBytes } from '../../util/copy-bytes.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import { type EncodedRecord, encodeHeader, HEADER_BYTES, type Location, PACK_ID_BYTES, packIdHex, TrailerBuilder } from './format.js';
import { packFile, packOfFile, ReadHandles, syncDirectory } from './pack-files.js';
import type { Appended, PackSink } from './sink.js';

export interface JournalOptions {
  /** The packs directory. */
  dir: string;
  /** Rotate the active pack once it holds this many bytes (an object larger than that gets a pack of its own). */
  packBytes: number;
  /** Rotate after this many objects too, bounding the trailer kept in memory. */
  maxObjectsPerPack: number;
  /** fdatasync on sync (default true). False: ordering kept, nothing made durable (tests, benchmarks). */
  fsync?: boolean | undefined;
  /** Called (and awaited) before a new pack file is created, with its id: the owner records it. */
  onNewPack?: ((pack: string) => Promise<void>) | undefined;
  /** Called after a pack was sealed (trailer written and synced, file closed), with the seq of its last record. */
  onSealed?: ((pack: string, lastSeq: number) => Promise<void>) | undefined;
  /**
   * Told once, when a write or sync fails and the journal breaks (see the
   * class comment, Failure); `tailCut`: whether the records written since
   * the last sync could be cut off (#cutUnsynced).
   */
  onFailed?: ((err: TransientError, tailCut: boolean) => void) | undefined;
}

type Item =
  /** `staged`: the record's bytes were copied into the journal's own memory at append (see #copy). */
  | { kind: 'record'; seq: number; pack: string; offset: number; record: EncodedRecord; staged: boolean }
  | { kind: 'rotate'; from: string; trailer: TrailerBuilder; end: number };

/**
 * The journal of one process (docs/spec/packs.md, Write order and
 * durability): one active pack file that records are appended to, in order,
 * and made durable by one fdatasync per batch.
 *
 * append() is synchronous: it decides where a record goes (rotating to a new
 * pack when the active one is full) and queues it. One writer loop writes
 * queued records with positional writev and runs fdatasync when a sync is
 * wanted; everything appended before a sync() call is durable when it
 * resolves, and syncs asked for while one runs share the next one (group
 * commit). A record is readable (read()) from the moment it is appended:
 * from memory until it is written, then from the file.
 *
 * Small records (a small upload's chunk, its manifest, directory nodes, slot
 * swaps) are copied at append into memory the journal owns, so they are out
 * of the caller's buffer at once (written() resolves), and the writer is not
 * woken for them: they go to the file with the next sync, or once enough of
 * them wait. A small upload's commit is then one writev and one fdatasync,
 * where each of its four or five records had been a writev of its own.
 *
 * Rotation seals the active pack (trailer, footer, fdatasync, close) before
 * the first record of the next one is written, so records in an older pack
 * are durable before any record in a newer one is (the journal's order
 * holds across packs).
 *
 * Failure: a write or sync that fails (a full disk, EIO) breaks the journal
 * for good: whatever was not yet durable may be lost (after a failed fsync
 * the page cache cannot be trusted), so every later call rejects with
 * TransientError and the owner reports itself unhealthy. The active pack is
 * cut back to its last sync, so that a restart replays exactly what was
 * acknowledged, not the whole records of commits told they failed.
 *
 * Bounds: large queued records hold their caller's buffers (callers wait
 * for written() before reusing them); staged ones are copies, in one 1 MiB
 * buffer (or copies of their own while it is full), written once 256 KiB of
 * them wait; the trailer of the active pack is kept in memory, encoded
 * (49 bytes an entry, ≤ maxObjectsPerPack entries, in a buffer that
 * doubles: at most 12.8 MB at the default 200,000); open read handles are
 * capped.
 */
export class FsJournal implements PackSink {
  readonly #opts: Required<Omit<JournalOptions, 'onNewPack' | 'onSealed' | 'onFailed'>> &
    Pick<JournalOptions, 'onNewPack' | 'onSealed' | 'onFailed'>;
  #active: string;
  #activeEnd = HEADER_BYTES;
  #activeTrailer = new TrailerBuilder();
  #activeCreated = false;
  #queue: Item[] = [];
  /** Records appended but not yet written, by `pack:offset` of their payload, for reads. */
  readonly #unwritten = new Map<string, Uint8Array>();
  #nextSeq = 1;
  #writtenSeq = 0;
  #syncedSeq = 0;
  /** Bytes written to the active pack since its last sync. */
  #unsyncedBytes = 0;
  /** Size of the active pack's file: its records, then zeros written ahead of them (see #zeroAhead). */
  #fileEnd = 0;
  /** Where the active pack's written records end. */
  #writtenEnd = 0;
  /** Where the active pack's synced records end: what a failure cuts it back to (see #fail). */
  #syncedEnd = 0;
  #wantSync = 0;
  #running: Promise<void> | undefined;
  #writtenWaiters: { seq: number; resolve(): void; reject(err: Error): void }[] = [];
  /** Seqs of queued records that still hold their caller's buffers (not staged, not yet written), in order. */
  #held: number[] = [];
  /** Memory staged records are copied into, from its start; reused once none of them waits to be written. */
  readonly #stage = Buffer.allocUnsafeSlow(STAGE_BYTES);
  #stageEnd = 0;
  /** Staged records queued and not yet written (in #stage or, when it was full, in copies of their own). */
  #stagedWaiting = 0;
  #stagedBytes = 0;
  #syncWaiters: { seq: number; resolve(): void; reject(err: Error): void }[] = [];
  #broken: TransientError | undefined;
  #closed = false;
  #fd: FileHandle | undefined;
  readonly #readers: ReadHandles;
  /** Packs this journal created, and those of them it sealed. */
  readonly #begun = new Set<string>();
  readonly #sealed = new Set<string>();

  private constructor(opts: JournalOptions) {
    this.#opts = { ...opts, fsync: opts.fsync ?? true };
    this.#active = newPackId();
    this.#readers = new ReadHandles(opts.dir);
  }

  /** A journal starting a fresh pack in `dir` (recovery of older packs is the owner's job, before this). */
  static create(opts: JournalOptions): FsJournal {
    return new FsJournal(opts);
  }

  get activePack(): string {
    return this.#active;
  }

  /** The TransientError every call rejects with since a write or sync failed; undefined while the journal works. */
  get failure(): TransientError | undefined {
    return this.#broken;
  }

  /** The highest seq that is durable. */
  get syncedSeq(): number {
    return this.#syncedSeq;
  }

  /**
   * Queues a record and says where it goes. `address` marks an object
   * record, listed in its pack's trailer.
   */
  append(record: EncodedRecord, address?: ChunkAddress): Appended {
    this.#usable();
    const full = this.#activeEnd > HEADER_BYTES && this.#activeEnd + record.bytes > this.#opts.packBytes;
    if (full || this.#activeTrailer.count >= this.#opts.maxObjectsPerPack) this.#rotate();
    const seq = this.#nextSeq++;
    const offset = this.#activeEnd;
    const payload = offset + record.payloadOffset;
    this.#activeEnd += record.bytes;
    const staged = record.bytes <= STAGE_RECORD_BYTES;
    const queued = staged ? this.#copy(record) : record;
    if (address !== undefined) {
      const length = record.bytes - record.payloadOffset - 4;
      this.#activeTrailer.add(address, payload, length);
      // The payload, where the queued record holds it: the staged copy, or the caller's buffer.
      const part = staged ? queued.parts[0]?.subarray(record.payloadOffset, record.payloadOffset + length) : queued.parts[1];
      if (part !== undefined) this.#unwritten.set(`${this.#active}:${payload}`, part);
    }
    this.#queue.push({ kind: 'record', seq, pack: this.#active, offset, record: queued, staged });
    if (!staged) {
      this.#held.push(seq);
      this.#kick();
    } else if (this.#stagedBytes >= STAGE_FLUSH_BYTES) {
      this.#kick();
    }
    return { seq, pack: this.#active, payload };
  }

  /** The record copied into one buffer the journal owns: into #stage while it has room, else a copy of its own. */
  #copy(record: EncodedRecord): EncodedRecord {
    const fits = this.#stageEnd + record.bytes <= this.#stage.length;
    const out = fits ? this.#stage.subarray(this.#stageEnd, this.#stageEnd + record.bytes) : Buffer.allocUnsafe(record.bytes);
    if (fits) this.#stageEnd += record.bytes;
    let at = 0;
    for (const part of record.parts) {
      copyBytes(out, part, at);
      at += part.length;
    }
    this.#stagedWaiting++;
    this.#stagedBytes += record.bytes;
    return { parts: [out], bytes: record.bytes, payloadOffset: record.payloadOffset };
  }

  /**
   * Resolves once every record up to `seq` is out of its caller's buffers:
   * written to its file, or staged (not necessarily durable).
   */
  written(seq: number): Promise<void> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#released(seq)) return Promise.resolve();
    return new Promise((resolve, reject) => this.#writtenWaiters.push({ seq, resolve, reject }));
  }

  #released(seq: number): boolean {
    const firstHeld = this.#held[0];
    return seq <= this.#writtenSeq || firstHeld === undefined || firstHeld > seq;
  }

  /** Resolves once everything appended so far is durable; returns the seq it covers. */
  async sync(): Promise<number> {
    this.#usable();
    const seq = this.#nextSeq - 1;
    if (seq <= this.#syncedSeq) return this.#syncedSeq;
    this.#wantSync = Math.max(this.#wantSync, seq);
    await new Promise<void>((resolve, reject) => {
      this.#syncWaiters.push({ seq, resolve, reject });
      this.#kick();
    });
    return seq;
  }

  /** An object's bytes, from memory while unwritten, else from its pack file. */
  async read(location: Location): Promise<Uint8Array> {
    const pending = this.#unwrittenAt(location);
    return pending === undefined ? this.#readers.read(location) : new Uint8Array(pending);
  }

  /** read(), into `target`: from a pack file hashed on the way (ReadHandles.readIntoHashed), from memory unhashed. */
  async readInto(location: Location, target: Uint8Array): Promise<{ read: number; sha256: Uint8Array | undefined }> {
    const pending = this.#unwrittenAt(location);
    if (pending === undefined) return this.#readers.readIntoHashed(location, target);
    copyBytes(target, pending);
    return { read: pending.length, sha256: undefined };
  }

  /** The object at `location` while it is still only in memory. */
  #unwrittenAt(location: Location): Uint8Array | undefined {
    const pending = this.#unwritten.get(`${location.pack}:${location.offset}`);
    return pending !== undefined && pending.length === location.length ? pending : undefined;
  }

  async sealedPacks(): Promise<{ pack: string; bytes: number }[]> {
    const out: { pack: string; bytes: number }[] = [];
    for (const name of await readdir(this.#opts.dir)) {
      const pack = packOfFile(name);
      // Packs of earlier runs were all sealed by recovery; of this run's, only those #seal finished.
      if (pack === undefined || (this.#begun.has(pack) && !this.#sealed.has(pack))) continue;
      try {
        out.push({ pack, bytes: (await stat(packFile(this.#opts.dir, pack))).size });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return out;
  }

  async removePack(pack: string): Promise<void> {
    if (pack === this.#active) throw new InvalidInputError(`pack ${pack} is being appended to`);
    this.#readers.drop(pack);
    await rm(packFile(this.#opts.dir, pack), { force: true });
    if (this.#opts.fsync) await syncDirectory(this.#opts.dir);
  }

  /** Seals the active pack (if it holds anything) and closes every file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (!this.#broken && this.#activeEnd > HEADER_BYTES) {
      this.#rotate();
      this.#kick();
      await this.sync().catch(() => undefined);
    }
    await this.#running;
    this.#closed = true;
    await this.#fd?.close().catch(() => undefined);
    this.#fd = undefined;
    await this.#readers.closeAll();
  }

  #usable(): void {
    if (this.#broken) throw this.#broken;
    if (this.#closed) throw new TransientError('the journal is closed');
  }

  #rotate(): void {
    this.#queue.push({ kind: 'rotate', from: this.#active, trailer: this.#activeTrailer, end: this.#activeEnd });
    this.#active = newPackId();
    this.#activeEnd = HEADER_BYTES;
    this.#activeTrailer = new TrailerBuilder();
  }

  #kick(): void {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
      if (!this.#broken && (this.#queue.length > 0 || this.#wantSync > this.#syncedSeq)) this.#kick();
    });
  }

  async #run(): Promise<void> {
    /** Whether this sync already let the event loop turn once (see below). */
    let gathered = false;
    try {
      while (this.#queue.length > 0 || this.#wantSync > this.#syncedSeq) {
        const batch = this.#queue;
        this.#queue = [];
        let run: Extract<Item, { kind: 'record' }>[] = [];
        for (const item of batch) {
          if (item.kind === 'record') {
            run.push(item);
            continue;
          }
          await this.#writeRun(run);
          run = [];
          await this.#seal(item.from, item.trailer, item.end);
          this.#activeCreated = false;
          this.#fd = undefined;
        }
        await this.#writeRun(run);
        // Everything queued when this batch was taken is written now; one sync covers it all.
        if (this.#wantSync > this.#syncedSeq) {
          // A small commit's sync is made on this thread: fdatasync of a few KiB takes 0.3–0.5 ms on
          // this project's disks, and through libuv's pool a close waited 0.2–0.4 ms longer for it
          // (one client putting 16 KiB files, 300 each way). A sync of more (a big upload's chunks)
          // may write out megabytes, and stays off the loop. Before a sync on the loop, the loop turns
          // once, so that commits of other sessions whose packets are already in (this turn's I/O
          // events) join it: a sync on the loop has no time in flight for them to queue up in.
          const inline = this.#opts.fsync && this.#fd !== undefined && this.#unsyncedBytes <= INLINE_SYNC_BYTES;
          if (inline && !gathered) {
            gathered = true;
            await nextTurn();
            if (this.#queue.length > 0) continue;
          }
          gathered = false;
          const written = this.#writtenSeq;
          const writtenEnd = this.#writtenEnd;
          if (this.#opts.fsync && this.#fd !== undefined) {
            if (inline) this.#zeroAhead(this.#fd);
            if (this.#unsyncedBytes <= INLINE_SYNC_BYTES) fdatasyncSync(this.#fd.fd);
            else await this.#fd.datasync();
          }
          this.#unsyncedBytes = 0;
          this.#syncedSeq = written;
          this.#syncedEnd = writtenEnd;
          this.#settle(this.#syncWaiters, written);
        }
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Writes contiguous records of one pack, creating the pack's file first if needed. */
  async #writeRun(run: Extract<Item, { kind: 'record' }>[]): Promise<void> {
    const first = run[0];
    const last = run.at(-1);
    if (first === undefined || last === undefined) return;
    const fd = await this.#activeFile(first.pack);
    const buffers = run.flatMap((item) => item.record.parts);
    let position = first.offset;
    let total = 0;
    for (const b of buffers) total += b.length;
    // writev may write less than asked (a full disk says so by failing); go on from where it stopped.
    // A small run is written on this thread: into the page cache that costs about a fifth of the CPU
    // of a round trip through libuv's pool (its wake-ups dominate; docs/benchmarks.md), and a commit
    // of a small upload is several such runs. Larger runs (a big upload's chunks) stay off the loop.
    const inline = total <= INLINE_WRITE_BYTES;
    let done = 0;
    while (done < total) {
      const bytesWritten = inline
        ? writevSync(fd.fd, remaining(buffers, done), position)
        : (await fd.writev(remaining(buffers, done), position)).bytesWritten;
      if (bytesWritten <= 0) throw new TransientError('the pack file took no bytes');
      done += bytesWritten;
      this.#unsyncedBytes += bytesWritten;
      position += bytesWritten;
    }
    this.#writtenEnd = position;
    this.#fileEnd = Math.max(this.#fileEnd, position);
    for (const item of run) {
      const payload = item.offset + item.record.payloadOffset;
      this.#unwritten.delete(`${item.pack}:${payload}`);
      if (item.staged) {
        this.#stagedWaiting--;
        this.#stagedBytes -= item.record.bytes;
      }
    }
    // Nothing staged waits any more: its memory is free for the next ones.
    if (this.#stagedWaiting === 0) this.#stageEnd = 0;
    while (this.#held[0] !== undefined && this.#held[0] <= last.seq) this.#held.shift();
    this.#writtenSeq = last.seq;
    for (let i = this.#writtenWaiters.length - 1; i >= 0; i--) {
      const w = this.#writtenWaiters[i];
      if (w !== undefined && this.#released(w.seq)) {
        this.#writtenWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  async #activeFile(pack: string): Promise<FileHandle> {
    if (this.#fd !== undefined && this.#activeCreated) return this.#fd;
    this.#begun.add(pack);
    await this.#opts.onNewPack?.(pack);
    const file = packFile(this.#opts.dir, pack);
    // Written under a temporary name and renamed, so a pack file never lacks its header.
    const temp = `${file}.new`;
    const fd = await open(temp, 'wx');
    try {
      await fd.write(encodeHeader(Buffer.from(pack, 'hex')), 0, HEADER_BYTES, 0);
      if (this.#opts.fsync) await fd.datasync();
      await rename(temp, file);
      if (this.#opts.fsync) await syncDirectory(this.#opts.dir);
    } catch (err) {
      await fd.close().catch(() => undefined);
      await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
    this.#fd = fd;
    this.#activeCreated = true;
    this.#fileEnd = HEADER_BYTES;
    this.#writtenEnd = HEADER_BYTES;
    this.#syncedEnd = HEADER_BYTES;
    return fd;
  }

  /**
   * Writes zeros past the active pack's records when fewer than
   * ZERO_LOW_WATER bytes of them are left, up to ZERO_AHEAD_BYTES past the
   * last record; the sync that follows makes them durable with the records.
   *
   * Why: a commit that grows the file changes its size, and fdatasync must
   * then commit ext4's journal as well as write the data. Into space the
   * file already has, it writes the data only. Measured on this project's
   * disk: 20 KiB appends with fdatasync, 0.28–0.30 ms a sync growing the
   * file, 0.14 ms into written zeros; in the gateway during the small-file
   * benchmark, 0.87 ms a sync before and 0.45 ms after. Zeros after the last
   * record are what recovery already takes for the end of an open pack (a
   * zero length with a failing crc), and sealing cuts them off first.
   */
  #zeroAhead(fd: FileHandle): void {
    if (this.#fileEnd - this.#writtenEnd >= ZERO_LOW_WATER) return;
    let position = this.#fileEnd;
    const end = this.#writtenEnd + ZERO_AHEAD_BYTES;
    try {
      while (position < end) {
        const n = writevSync(fd.fd, [ZEROS.subarray(0, Math.min(ZEROS.length, end - position))], position);
        if (n <= 0) break;
        position += n;
      }
    } catch {
      // Only a saving: a disk too full for the zeros may still take the commit's records, which were written already.
    }
    this.#fileEnd = position;
  }

  /** Seals the current file: trailer and footer after its last record, fdatasync, close. */
  async #seal(pack: string, trailer: TrailerBuilder, end: number): Promise<void> {
    const fd = this.#fd;
    if (fd === undefined || !this.#activeCreated) return; // nothing was ever written to it
    const parts = trailer.finish(end);
    // Zeros written ahead of the records go first, so that the footer is the file's last bytes.
    if (this.#fileEnd > end) await fd.truncate(end);
    let position = end;
    for (const p of parts) {
      await fd.write(p, 0, p.length, position);
      position += p.length;
    }
    if (this.#opts.fsync) await fd.datasync();
    this.#unsyncedBytes = 0;
    await fd.close();
    this.#syncedSeq = this.#writtenSeq;
    this.#settle(this.#syncWaiters, this.#writtenSeq);
    this.#sealed.add(pack);
    await this.#opts.onSealed?.(pack, this.#writtenSeq);
  }

  #settle(waiters: { seq: number; resolve(): void }[], upTo: number): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w !== undefined && w.seq <= upTo) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  #fail(err: unknown): void {
    const cause = err instanceof Error ? err : new Error(String(err));
    const broken = new TransientError(`the journal failed: ${(cause as NodeJS.ErrnoException).code ?? cause.message}`, { cause });
    this.#broken = broken;
    const tailCut = this.#cutUnsynced();
    for (const w of [...this.#writtenWaiters, ...this.#syncWaiters]) w.reject(broken);
    this.#writtenWaiters = [];
    this.#syncWaiters = [];
    this.#queue = [];
    this.#opts.onFailed?.(broken, tailCut);
  }

  /**
   * Cuts the active pack back to where its last successful sync ended, and
   * syncs that: answers whether it could. Records written after that sync
   * belong to commits that are now told they failed; left in the file, the
   * whole ones among them would be replayed at the next start (recovery
   * takes every whole record of an open pack), and an upload answered
   * FAILURE would appear after a restart. A full disk allows the cut: it
   * frees space.
   */
  #cutUnsynced(): boolean {
    const fd = this.#fd;
    if (fd === undefined || !this.#activeCreated) return true;
    try {
      ftruncateSync(fd.fd, this.#syncedEnd);
      if (this.#opts.fsync) fdatasyncSync(fd.fd);
      this.#fileEnd = this.#syncedEnd;
      this.#writtenEnd = this.#syncedEnd;
      return true;
    } catch {
      return false;
    }
  }
}

function newPackId(): string {
  return packIdHex(randomBytes(PACK_ID_BYTES));
}

/** Records up to this size are staged (copied at append, written with the next sync; see the class comment). */
const STAGE_RECORD_BYTES = 64 * 1024;
/** Memory staged records are copied into; one that does not fit gets a copy of its own. */
const STAGE_BYTES = 1024 * 1024;
/** Once this much is staged and unwritten, the writer writes it without waiting for a sync. */
const STAGE_FLUSH_BYTES = 256 * 1024;
/** Runs of records up to this size are written synchronously (see #writeRun). */
const INLINE_WRITE_BYTES = 64 * 1024;
/** A sync of at most this many bytes written since the last one runs on this thread (see #run). */
const INLINE_SYNC_BYTES = 64 * 1024;
/** Zeros kept written ahead of the active pack's records for small commits, and the mark under which more are written. */
const ZERO_AHEAD_BYTES = 1024 * 1024;
const ZERO_LOW_WATER = 256 * 1024;
const ZEROS = Buffer.alloc(ZERO_AHEAD_BYTES);

/** The buffers of `buffers` from byte `skip` on. */
function remaining(buffers: Buffer[], skip: number): Buffer[] {
  if (skip === 0) return buffers;
  const out: Buffer[] = [];
  let left = skip;
  for (const b of buffers) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}
