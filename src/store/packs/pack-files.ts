import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import { preadSha256Shared } from '../../crypto/index.js';
import { NotFoundError, TransientError } from '../../errors.js';
import { readFullyAt } from '../../util/read-fully.js';
import { decodeHeader, HEADER_BYTES, type Location } from './format.js';

/**
 * Pack files in a packs directory (docs/spec/packs.md): their names, the
 * directory sync that makes a new or removed name durable, and the read
 * handles the journal reads them through. The journal (journal.ts) writes
 * them; the local engine (local-engine.ts) scans and checks them.
 */

/** File name of a pack. */
export function packFile(dir: string, pack: string): string {
  return path.join(dir, `${pack}.pack`);
}

/** The pack id of a file name, or undefined for anything else. */
export function packOfFile(name: string): string | undefined {
  const m = /^([0-9a-f]{16})\.pack$/.exec(name);
  return m?.[1];
}

/** fsync of a directory: a name created, renamed or removed in it is durable once this resolves. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** Read handles kept open at once. */
const MAX_OPEN = 64;

/** A pack's read handle, and the reads using it now. */
interface OpenPack {
  handle: Promise<FileHandle>;
  leases: number;
  /** No longer in the map (evicted or dropped): closed when its last read ends. */
  closing: boolean;
}

/**
 * Read handles of pack files, at most MAX_OPEN idle ones (least recently
 * used closed first). A pack that is gone is NotFoundError (gc removed it:
 * the caller asks the index again).
 *
 * A read holds its pack's handle from the moment it asks for it (a lease,
 * taken before any await) until it settles: a handle evicted or dropped
 * meanwhile is closed after its last read. FileHandle.close() would wait for
 * the handle's own operations, but not for a read that has not begun, nor
 * for an offload thread reading through its descriptor (readIntoHashed),
 * whose number could by then name another file.
 */
export class ReadHandles {
  readonly #open = new Map<string, OpenPack>();

  constructor(private readonly dir: string) {}

  async read(location: Location): Promise<Uint8Array> {
    const out = Buffer.allocUnsafe(location.length);
    const done = await this.readInto(location, out);
    // A plain Uint8Array, as every store returns (a short read is the caller's IntegrityError).
    return new Uint8Array(out.buffer, out.byteOffset, done);
  }

  /** Reads `location` into the start of `target`; answers the bytes read, fewer at the file's end. */
  async readInto(location: Location, target: Uint8Array): Promise<number> {
    if (target.length < location.length) throw new RangeError('readInto: target shorter than the location');
    return this.#withHandle(location, (fh) => readWith(fh, location, target));
  }

  /**
   * readInto, and the SHA-256 of what it read: for a view into shared
   * memory, an idle offload thread reads and hashes it in one hop
   * (preadSha256Shared), where a read on the event loop's file threads and
   * then a hash on the offload thread took two. Otherwise (a small or
   * unshared target, no idle thread) it reads as readInto and leaves
   * `sha256` undefined for the caller to compute.
   */
  async readIntoHashed(location: Location, target: Uint8Array): Promise<{ read: number; sha256: Uint8Array | undefined }> {
    if (target.length < location.length) throw new RangeError('readInto: target shorter than the location');
    return this.#withHandle(location, async (fh) => {
      const hashed = await preadSha256Shared(fh.fd, location.offset, target.subarray(0, location.length));
      if (hashed !== undefined) return { read: hashed.bytesRead, sha256: hashed.digest };
      return { read: await readWith(fh, location, target), sha256: undefined };
    });
  }

  /** Runs `use` with the pack's handle, leased until it settles; a failure other than a missing pack is TransientError. */
  async #withHandle<T>(location: Location, use: (fh: FileHandle) => Promise<T>): Promise<T> {
    const entry = this.#lease(location.pack);
    try {
      return await use(await entry.handle);
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      throw new TransientError(`reading pack ${location.pack}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        cause: err,
      });
    } finally {
      entry.leases--;
      if (entry.closing && entry.leases === 0) void closeHandle(entry);
    }
  }

  /** The pack's entry, opened if need be, with one more lease; evicts the least recently used beyond MAX_OPEN. */
  #lease(pack: string): OpenPack {
    let entry = this.#open.get(pack);
    if (entry !== undefined) {
      this.#open.delete(pack);
    } else {
      const opened: OpenPack = { handle: this.#openPack(pack), leases: 0, closing: false };
      // A pack that could not be opened is forgotten, so the next read tries again.
      opened.handle.catch(() => {
        if (this.#open.get(pack) === opened) this.#open.delete(pack);
      });
      entry = opened;
    }
    this.#open.set(pack, entry);
    entry.leases++;
    for (const oldest of this.#open.keys()) {
      if (this.#open.size <= MAX_OPEN) break;
      void this.#forget(oldest);
    }
    return entry;
  }

  async #openPack(pack: string): Promise<FileHandle> {
    let fd: FileHandle;
    try {
      fd = await open(packFile(this.dir, pack), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no pack ${pack}`);
      throw err;
    }
    let holds: string | undefined;
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      await fd.read(header, 0, HEADER_BYTES, 0);
      holds = decodeHeader(header);
    } finally {
      if (holds !== pack) await fd.close().catch(() => undefined);
    }
    if (holds !== pack) throw new NotFoundError(`pack ${pack} holds another pack`);
    return fd;
  }

  /** Takes the pack's handle out of the map: closed now if no read uses it (answers that close), else after the last. */
  #forget(pack: string): Promise<void> | undefined {
    const entry = this.#open.get(pack);
    if (entry === undefined) return undefined;
    this.#open.delete(pack);
    entry.closing = true;
    return entry.leases === 0 ? closeHandle(entry) : undefined;
  }

  /** Forgets a pack's handle (it was deleted). */
  drop(pack: string): void {
    void this.#forget(pack);
  }

  /** Closes every handle no read uses, and waits for that; the others close after their last read. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#open.keys()].map((pack) => this.#forget(pack)));
  }
}

/** Closes a handle, once it is open; a failure to open or close is nobody's concern by now. */
function closeHandle(entry: OpenPack): Promise<void> {
  return entry.handle.then((h) => h.close()).catch(() => undefined);
}

/** Reads `location` through `fh` into the start of `target`; answers the bytes read, fewer at the file's end. */
function readWith(fh: FileHandle, location: Location, target: Uint8Array): Promise<number> {
  return readFullyAt(fh.fd, target.subarray(0, location.length), location.offset);
}
