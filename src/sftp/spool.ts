import { createCipheriv, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError, InvalidInputError } from '../errors.js';

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
 * Holes and extension: a hole in the file reads back as zero *ciphertext*,
 * which would decrypt to keystream, so instead every extension (a write
 * past the end, truncate up) writes encrypted zeros over the gap. Invariant:
 * every byte in [0, size) on disk is the encryption of the logical content.
 * The cost is proportional to the final file size, which the upload pays
 * anyway; memory stays at one IO_PIECE.
 *
 * Operations are serialized (one at a time, in call order), so concurrent
 * SFTP writes to one handle cannot interleave a gap fill with a write.
 */
export class EncryptedSpool {
  #size = 0;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The spool file's path, for tests and diagnostics; its content is ciphertext. */
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly key: Buffer,
  ) {}

  /** Creates a new, empty spool file (mode 0600, a fresh unique name) in `dir`, which must exist. */
  static async create(dir: string): Promise<EncryptedSpool> {
    const file = path.join(path.resolve(dir), `${SPOOL_PREFIX}${process.pid}-${randomBytes(12).toString('hex')}${SPOOL_SUFFIX}`);
    // 'wx+': read-write, and fails rather than reuse an existing file; the mode is set at creation, so there is no window at a wider mode.
    const handle = await fsp.open(file, 'wx+', 0o600);
    liveSpools.add(file);
    return new EncryptedSpool(file, handle, randomBytes(32));
  }

  /** Logical size in bytes. */
  get size(): number {
    return this.#size;
  }

  /** Writes `data` at `offset`; a gap between the old end and `offset` reads back as zeros. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    checkRange(offset, data.length);
    return this.#serialize(async () => {
      if (offset > this.#size) await this.#writeZeros(this.#size, offset);
      await this.#writeEncrypted(offset, data);
      this.#size = Math.max(this.#size, offset + data.length);
    });
  }

  /** Up to `length` bytes at `offset`; shorter only at the end, empty at or past it. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(offset, length);
    if (length > MAX_SPOOL_READ) throw new InvalidInputError(`spool reads are limited to ${MAX_SPOOL_READ} bytes`);
    return this.#serialize(() => this.#readDecrypted(offset, length));
  }

  /** Sets the size: shrinking drops the tail, growing appends zeros. */
  async truncate(size: number): Promise<void> {
    checkRange(size, 0);
    return this.#serialize(async () => {
      if (size < this.#size) await this.handle.truncate(size);
      else if (size > this.#size) await this.#writeZeros(this.#size, size);
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
      yield await this.#serialize(() => this.#readDecrypted(offset, Math.min(IO_PIECE, end - offset)));
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

  async #writeZeros(from: number, to: number): Promise<void> {
    for (let offset = from; offset < to; offset += IO_PIECE) {
      const n = Math.min(IO_PIECE, to - offset);
      await writeFully(this.handle, this.#keystreamXor(offset, ZEROS.subarray(0, n)), offset);
    }
  }

  async #readDecrypted(offset: number, length: number): Promise<Uint8Array> {
    const n = Math.max(0, Math.min(length, this.#size - offset));
    if (n === 0) return new Uint8Array(0);
    const buffer = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const { bytesRead } = await this.handle.read(buffer, filled, n - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // Only someone else truncating our temp file behind our back gets here.
    if (filled !== n) throw new IntegrityError(path.basename(this.path), 'spool file');
    return new Uint8Array(this.#keystreamXor(offset, buffer));
  }
}

const SPOOL_PREFIX = 'capstan-spool-';
const SPOOL_SUFFIX = '.tmp';
/** Bound on one disk write, one zero-fill step, and one stream() piece. */
const IO_PIECE = 1024 * 1024;
/** Largest single read(); SFTP reads are far smaller. */
export const MAX_SPOOL_READ = 64 * 1024 * 1024;
const ZEROS = Buffer.alloc(IO_PIECE);

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
