import { createCipheriv, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError, InvalidInputError } from '../errors.js';
import { RangeSet } from '../util/range-set.js';

/** The bytes a spool starts from (a FileReader is one): read answers up to `length` bytes, fewer only at `size`. */
export interface SpoolBase {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface SpoolOptions {
  /** What the spool starts as (its size and content); none: empty. */
  base?: SpoolBase | undefined;
  /** Bound on written ranges kept apart (default MAX_RANGES; tests use fewer). */
  maxRanges?: number | undefined;
}

/**
 * A local, encrypted scratch file for uploads that do not arrive in order.
 *
 * The SFTP layer needs this because real clients write randomly: sshfs does
 * `dd conv=notrunc`, truncates, writes past the end and reads back through
 * the write handle, none of which a streaming FileWriter can take. The bytes
 * sit here until close, then stream() feeds them to a FileWriter. Nothing in
 * this file is ever plaintext on disk.
 *
 * Cipher: AES-256-CTR under a random key that lives only in this object's
 * memory, with the counter = the 16-byte block index of the file offset. CTR
 * encrypts any byte range independently, so a write at any offset is one
 * positional write: no read-modify-write, no per-block metadata.
 *
 * Trade-offs, deliberate:
 * - Overwriting a range reuses its keystream. An attacker who images the
 *   disk twice, before and after an overwrite, learns the XOR of the old and
 *   new plaintext there. That needs access to the running machine's disk
 *   while the spool exists, at which point the attacker can usually read the
 *   process's memory (and so the key) as well. What this defends against is
 *   the disk afterwards: a crash, a stolen or recycled disk, a backup of the
 *   temp directory. The key dies with the process, and then a leftover spool
 *   is noise.
 * - No authentication. Someone who can write the spool file while we run can
 *   flip bits of the upload; the same local access lets them do worse. The
 *   content is authenticated once it is chunked (AEAD, content addresses).
 *
 * Sparse, and copy-on-write over a base: the spool holds only the bytes
 * written through it, and knows which (a RangeSet of written ranges).
 * Every other byte of [0, size) is the base file's (an existing file an
 * upload changes in place, or the part of an upload already streamed into
 * the store) below `baseEnd`, and zero above it. So a write past the end, a
 * truncate up (`truncate -s 100G` through sshfs), or a 4 KiB write into a
 * 1 GiB file costs what was written, not the file's size, in time and in
 * spool disk; the file on disk is sparse where nothing was written, and
 * those holes are never read (a hole would decrypt to keystream, not to
 * zeros). Cut-down is remembered: `baseEnd` only ever decreases, so base
 * bytes cut off by a truncate do not come back when the file grows again.
 * stream() at CLOSE composes the three sources in order.
 *
 * Bounds: at most `maxRanges` written ranges (default MAX_RANGES, 16 bytes
 * of heap each); one more fills the smallest gap between two of them with
 * its base or zero bytes, so a client writing every other byte costs spool
 * disk, not memory. One IO_PIECE of memory per operation, plus what the
 * base's reader holds.
 *
 * The base MUST stay readable until close: its chunks are those of a file
 * the upload opened or of its own streamed part, which the gc grace period
 * protects like every upload in flight (src/gc/sweep.ts).
 *
 * Operations are serialized (one at a time, in call order), so concurrent
 * SFTP writes to one handle cannot interleave.
 */
export class EncryptedSpool {
  #size: number;
  /** Bytes below this and outside #written are the base's; at or above it, zeros. Never grows. */
  #baseEnd: number;
  /** Ranges whose bytes are in the spool file. */
  readonly #written = new RangeSet();
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The spool file's path, for tests and diagnostics; its content is ciphertext. */
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly key: Buffer,
    private readonly base: SpoolBase | undefined,
    private readonly maxRanges: number,
  ) {
    this.#size = base?.size ?? 0;
    this.#baseEnd = this.#size;
  }

  /** Creates a new spool file (mode 0600, a fresh unique name) in `dir`, which must exist. */
  static async create(dir: string, options: SpoolOptions = {}): Promise<EncryptedSpool> {
    const file = path.join(path.resolve(dir), `${SPOOL_PREFIX}${process.pid}-${randomBytes(12).toString('hex')}${SPOOL_SUFFIX}`);
    // 'wx+': read-write, and fails rather than reuse an existing file; the mode is set at creation, so there is no window at a wider mode.
    const handle = await fsp.open(file, 'wx+', 0o600);
    liveSpools.add(file);
    return new EncryptedSpool(file, handle, randomBytes(32), options.base, Math.max(2, options.maxRanges ?? MAX_RANGES));
  }

  /** Logical size in bytes. */
  get size(): number {
    return this.#size;
  }

  /** Written ranges held apart now (for tests of the bound). */
  get ranges(): number {
    return this.#written.count;
  }

  /** Writes `data` at `offset`; a gap between the old end and `offset` reads back as zeros. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    checkRange(offset, data.length);
    return this.#serialize(async () => {
      if (data.length === 0) {
        if (offset > this.#size) this.#size = offset;
        return;
      }
      await this.#writeEncrypted(offset, data);
      this.#written.add(offset, offset + data.length);
      this.#size = Math.max(this.#size, offset + data.length);
      // maxRanges ≥ 2, so there is a gap to fill each time round.
      while (this.#written.count > this.maxRanges) await this.#fillSmallestGap();
    });
  }

  /** Up to `length` bytes at `offset`; shorter only at the end, empty at or past it. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    if (length > MAX_SPOOL_READ) throw new InvalidInputError(`spool reads are limited to ${MAX_SPOOL_READ} bytes`);
    return this.#serialize(() => this.#compose(offset, Math.max(0, Math.min(length, this.#size - offset))));
  }

  /** Sets the size: shrinking drops the tail, growing appends zeros. */
  async truncate(size: number): Promise<void> {
    checkRange(size, 0);
    return this.#serialize(async () => {
      if (size < this.#size) {
        this.#written.clip(size);
        this.#baseEnd = Math.min(this.#baseEnd, size);
        // Gives the disk back; the file past `size` is never read again.
        await this.handle.truncate(size);
      }
      this.#size = size;
    });
  }

  /**
   * The content from 0 to the size at the time of the call, in IO_PIECE
   * pieces. Each piece is read under the lock, but the caller must not write
   * while streaming (the SFTP layer streams only once the handle is closed).
   */
  async *stream(): AsyncIterable<Uint8Array> {
    const end = this.#size;
    for (let offset = 0; offset < end; offset += IO_PIECE) {
      yield await this.#serialize(() => this.#compose(offset, Math.min(IO_PIECE, end - offset)));
    }
  }

  /** Closes and unlinks the file and forgets the key. Idempotent. */
  close(): Promise<void> {
    return this.#serialize(async () => {
      if (this.#closed) return;
      this.#closed = true;
      this.key.fill(0);
      liveSpools.delete(this.path);
      try {
        await this.handle.close();
      } finally {
        await fsp.rm(this.path, { force: true });
      }
    }, true);
  }

  #serialize<T>(op: () => Promise<T>, allowClosed = false): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed && !allowClosed) throw new InvalidInputError('the spool is closed');
      return op();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** XOR with the keystream at `offset`: encryption and decryption alike. */
  #keystreamXor(offset: number, data: Uint8Array): Buffer {
    const iv = Buffer.alloc(16);
    // Counter = block index in the low 64 bits; file offsets stay below 2^53, so it never carries into the high half.
    iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
    const cipher = createCipheriv('aes-256-ctr', this.key, iv);
    const skip = offset % 16;
    if (skip > 0) cipher.update(ZEROS.subarray(0, skip));
    return cipher.update(data);
  }

  async #writeEncrypted(offset: number, data: Uint8Array): Promise<void> {
    for (let done = 0; done < data.length; done += IO_PIECE) {
      const piece = data.subarray(done, Math.min(data.length, done + IO_PIECE));
      await writeFully(this.handle, this.#keystreamXor(offset + done, piece), offset + done);
    }
  }

  /** [offset, offset + n) from the three sources; n is within the size. */
  async #compose(offset: number, n: number): Promise<Uint8Array> {
    if (n <= 0) return new Uint8Array(0);
    const pieces = [...this.#written.pieces(offset, offset + n)];
    // All written (an upload spooled whole): the keystream's output is the answer, no copy.
    if (pieces.length === 1 && pieces[0]?.held === true) return new Uint8Array(this.#keystreamXor(offset, await this.#readRaw(offset, n)));
    const out = Buffer.alloc(n);
    for (const piece of pieces) {
      const at = piece.start - offset;
      const target = out.subarray(at, at + piece.end - piece.start);
      if (piece.held) this.#keystreamXor(piece.start, await this.#readRaw(piece.start, target.length)).copy(target);
      else await this.#readBase(piece.start, target);
    }
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }

  /** The spool file's bytes (ciphertext) at `offset`, all `n` of them. */
  async #readRaw(offset: number, n: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const { bytesRead } = await this.handle.read(buffer, filled, n - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // Only someone else truncating our temp file behind our back gets here.
    if (filled !== n) throw new IntegrityError(path.basename(this.path), 'spool file');
    return buffer;
  }

  /** Unwritten bytes at `offset` into `target` (zeroed by the caller): the base's below #baseEnd. */
  async #readBase(offset: number, target: Buffer): Promise<void> {
    const base = this.base;
    const end = Math.min(offset + target.length, this.#baseEnd);
    for (let at = offset; base !== undefined && at < end; ) {
      const bytes = await base.read(at, Math.min(IO_PIECE, end - at));
      if (bytes.length === 0) throw new IntegrityError('the file an upload changes', 'file');
      target.set(bytes, at - offset);
      at += bytes.length;
    }
  }

  /** Writes the unwritten bytes between the two closest written ranges, which then merge. */
  async #fillSmallestGap(): Promise<void> {
    const gap = this.#written.smallestGap();
    if (gap === undefined) return;
    for (let at = gap.start; at < gap.end; at += IO_PIECE) {
      const piece = Buffer.alloc(Math.min(IO_PIECE, gap.end - at));
      await this.#readBase(at, piece);
      await writeFully(this.handle, this.#keystreamXor(at, piece), at);
    }
    this.#written.add(gap.start, gap.end);
  }
}

const SPOOL_PREFIX = 'capstan-spool-';
const SPOOL_SUFFIX = '.tmp';
/** Bound on one disk write, one gap-fill step, and one stream() piece. */
const IO_PIECE = 1024 * 1024;
/** Written ranges a spool keeps apart before it fills gaps (16 bytes of heap each). */
const MAX_RANGES = 8192;
/** Largest single read(); SFTP reads are far smaller. */
export const MAX_SPOOL_READ = 64 * 1024 * 1024;

/** What a keystream starting inside a block skips. */
const ZEROS = Buffer.alloc(16);

/** Spools this process has open, which cleanSpoolDir must leave alone. */
const liveSpools = new Set<string>();

function checkRange(offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    !Number.isSafeInteger(offset + length)
  ) {
    throw new InvalidInputError('spool offset and length must be non-negative integers');
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Deletes spool files left in `dir` by earlier runs (a crash, a kill -9
 * mid-upload), creating `dir` (0700) if it is missing. Called at gateway
 * start; returns how many it removed. Spools this process has open are kept;
 * those of another live process are not recognisable, so a spool directory
 * MUST NOT be shared by two gateways running at once.
 */
export async function cleanSpoolDir(dir: string): Promise<number> {
  const root = path.resolve(dir);
  await fsp.mkdir(root, { recursive: true, mode: 0o700 });
  let removed = 0;
  for await (const entry of await fsp.opendir(root)) {
    if (!entry.name.startsWith(SPOOL_PREFIX) || !entry.name.endsWith(SPOOL_SUFFIX)) continue;
    const file = path.join(root, entry.name);
    if (liveSpools.has(file) || entry.isDirectory()) continue;
    await fsp.rm(file, { force: true });
    removed += 1;
  }
  return removed;
}
