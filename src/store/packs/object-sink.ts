import { randomBytes } from 'node:crypto';
import { NotFoundError } from '../../errors.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import { type EncodedRecord, encodeHeader, HEADER_BYTES, type Location, PACK_ID_BYTES, packIdHex, TrailerBuilder } from './format.js';
import type { PackObjects } from './pack-objects.js';
import type { Appended, PackSink } from './sink.js';

export interface ObjectPackSinkOptions {
  /** Where whole packs go: an S3 bucket (s3-pack-objects.ts) or a shared directory (fs-pack-objects.ts). */
  objects: PackObjects;
  /** A pack being built is uploaded once it would exceed this (default 16 MiB); a larger object gets a pack of its own. */
  packBytes?: number | undefined;
  /** Packs being uploaded at once before append's caller waits (default 2). */
  maxUploads?: number | undefined;
  /**
   * Compaction only sees packs at least this old (default 1 h): a pack
   * another gateway uploaded a moment ago may not be indexed yet, and
   * would look empty.
   */
  minSealedAgeMs?: number | undefined;
  /** The clock, in milliseconds (tests). */
  now?: (() => number) | undefined;
}

const DEFAULT_PACK_BYTES = 16 * 1024 * 1024;

/** A pack being built in memory, then uploaded. */
interface Building {
  pack: string;
  /** Header, then one buffer per record (copies: the caller's buffers are theirs again once appended). */
  parts: Buffer[];
  /** Where each part starts in the pack. */
  starts: number[];
  size: number;
  trailer: TrailerBuilder;
  lastSeq: number;
  /** Once sealed: the whole pack object. */
  bytes?: Buffer;
  upload?: Promise<void> | undefined;
  uploaded: boolean;
}

/**
 * Packs written whole (docs/spec/packs.md, Several gateways): what a pack
 * store appends is built into a pack in memory; sync() seals it (trailer
 * and footer, the same format as a file pack) and writes it as one object
 * of `PackObjects`: one S3 PUT of `<prefix>packs/<16 hex>.pack`, or one
 * file written, synced and renamed into a directory several gateways share.
 * So a commit of a small file, whatever number of objects it writes, is one
 * durable write, and concurrent commits share it. A read is one ranged read
 * of exactly the object's bytes (or memory, for a pack not written yet).
 *
 * Order: packs may upload concurrently, but `syncedSeq` only passes a pack
 * once every earlier one is uploaded, and a failed upload is retried by the
 * next sync() (its bytes stay in memory), so a record is never durable
 * while an earlier one is not.
 *
 * Bounds: one pack being built (at most packBytes, or one object) plus
 * maxUploads sealed packs uploading; written() makes appenders wait for
 * room, so a large upload streams through at most about
 * (maxUploads + 1) × packBytes of memory.
 */
export class ObjectPackSink implements PackSink {
  readonly #objects: PackObjects;
  readonly #packBytes: number;
  readonly #maxUploads: number;
  readonly #minAgeMs: number;
  readonly #now: () => number;
  #seq = 0;
  #building: Building | undefined;
  /** Sealed, not yet known uploaded, oldest first (readable from memory). */
  readonly #sealed: Building[] = [];
  #syncedSeq = 0;
  readonly #roomWaiters: (() => void)[] = [];

  constructor(options: ObjectPackSinkOptions) {
    this.#objects = options.objects;
    this.#packBytes = options.packBytes ?? DEFAULT_PACK_BYTES;
    this.#maxUploads = options.maxUploads ?? 2;
    this.#minAgeMs = options.minSealedAgeMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
  }

  get syncedSeq(): number {
    return this.#syncedSeq;
  }

  append(record: EncodedRecord, address?: ChunkAddress): Appended {
    let b = this.#building;
    if (b !== undefined && b.size + record.bytes > this.#packBytes && b.lastSeq > 0) {
      this.#seal(b);
      b = undefined;
    }
    b ??= this.#building = this.#newPack();
    const start = b.size;
    b.parts.push(Buffer.concat(record.parts, record.bytes));
    b.starts.push(start);
    b.size += record.bytes;
    const payload = start + record.payloadOffset;
    if (address !== undefined) b.trailer.add(address, payload, record.bytes - record.payloadOffset - 4);
    b.lastSeq = ++this.#seq;
    return { seq: b.lastSeq, pack: b.pack, payload };
  }

  /**
   * The record is copied already; this waits only for upload room (the
   * memory bound). A pack whose upload failed is tried again here, and if
   * that fails too the error goes to the caller (a large upload's write
   * fails, rather than waiting for a sync nobody may ask for).
   */
  async written(_seq: number): Promise<void> {
    while (this.#sealed.length >= this.#maxUploads) {
      const failed = this.#sealed.find((b) => b.upload === undefined);
      if (failed !== undefined) {
        failed.upload = this.#upload(failed);
        await failed.upload;
        continue;
      }
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  async sync(): Promise<number> {
    const target = this.#seq;
    if (this.#building !== undefined && this.#building.lastSeq > 0) this.#seal(this.#building);
    for (const b of [...this.#sealed]) {
      if (b.lastSeq > target) break;
      // A failed upload is tried again here: its records are still only in memory.
      b.upload ??= this.#upload(b);
      await b.upload;
    }
    return Math.max(this.#syncedSeq, target);
  }

  async read(location: Location): Promise<Uint8Array> {
    const b = this.#building?.pack === location.pack ? this.#building : this.#sealed.find((s) => s.pack === location.pack);
    if (b !== undefined) return sliceOf(b, location);
    // No byte to fetch (an empty object): the address check decides.
    if (location.length === 0) return new Uint8Array(0);
    // A short answer (a truncated pack) goes back as it is: the pack store calls that an IntegrityError of the object.
    return this.#objects.read(location.pack, location.offset, location.length);
  }

  /** Packs old enough that their writers have indexed them (see minSealedAgeMs). */
  async sealedPacks(): Promise<{ pack: string; bytes: number }[]> {
    const oldest = this.#now() - this.#minAgeMs;
    return (await this.#objects.list()).filter((p) => p.modifiedMs <= oldest).map(({ pack, bytes }) => ({ pack, bytes }));
  }

  removePack(pack: string): Promise<void> {
    return this.#objects.remove(pack);
  }

  /** Writes what is pending; the objects' client belongs to whoever made it. */
  async close(): Promise<void> {
    await this.sync();
  }

  #newPack(): Building {
    const id = randomBytes(PACK_ID_BYTES);
    const header = encodeHeader(id);
    return {
      pack: packIdHex(id),
      parts: [header],
      starts: [0],
      size: HEADER_BYTES,
      trailer: new TrailerBuilder(),
      lastSeq: 0,
      uploaded: false,
    };
  }

  #seal(b: Building): void {
    const tail = b.trailer.finish(b.size);
    b.bytes = Buffer.concat([...b.parts, ...tail]);
    b.parts = [];
    b.starts = [];
    if (this.#building === b) this.#building = undefined;
    this.#sealed.push(b);
    b.upload = this.#upload(b);
    // Nobody may be waiting on it yet: a failure is reported by the sync() that awaits it, not as an unhandled rejection.
    b.upload.catch(() => undefined);
  }

  async #upload(b: Building): Promise<void> {
    try {
      await this.#objects.put(b.pack, b.bytes!);
    } catch (err) {
      b.upload = undefined; // the next sync() or written() tries again
      // Writers waiting for room must see it: they retry it or fail, never wait for nothing.
      for (const wake of this.#roomWaiters.splice(0)) wake();
      throw err;
    }
    b.uploaded = true;
    // Durable up to the last record of the oldest packs that are all uploaded.
    while (this.#sealed[0]?.uploaded === true) {
      const done = this.#sealed.shift()!;
      this.#syncedSeq = Math.max(this.#syncedSeq, done.lastSeq);
    }
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }
}

/** An object's bytes from a pack still in memory (a copy: the caller owns what it gets). */
function sliceOf(b: Building, location: Location): Uint8Array {
  if (b.bytes !== undefined) return new Uint8Array(b.bytes.subarray(location.offset, location.offset + location.length));
  // Not sealed: find the record that holds the object (parts are in offset order).
  let lo = 0;
  let hi = b.starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (b.starts[mid]! <= location.offset) lo = mid;
    else hi = mid - 1;
  }
  const part = b.parts[lo]!;
  const from = location.offset - b.starts[lo]!;
  if (from + location.length > part.length) throw new NotFoundError(`no object at ${location.pack}:${location.offset}`);
  return new Uint8Array(part.subarray(from, from + location.length));
}
