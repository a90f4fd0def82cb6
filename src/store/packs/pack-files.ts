import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError, TransientError } from '../../errors.js';
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

/**
 * Read handles of pack files, at most MAX_OPEN (least recently used closed
 * first). A pack that is gone is NotFoundError (gc removed it: the caller
 * asks the index again).
 */
export class ReadHandles {
  readonly #open = new Map<string, Promise<FileHandle>>();

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
    try {
      return await this.#read(location, target);
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      throw new TransientError(`reading pack ${location.pack}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        cause: err,
      });
    }
  }

  async #read(location: Location, target: Uint8Array): Promise<number> {
    const fd = await this.#handle(location.pack);
    let done = 0;
    while (done < location.length) {
      const { bytesRead } = await fd.read(target, done, location.length - done, location.offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async #handle(pack: string): Promise<FileHandle> {
    const existing = this.#open.get(pack);
    if (existing !== undefined) {
      this.#open.delete(pack);
      this.#open.set(pack, existing);
      return existing;
    }
    const opening = open(packFile(this.dir, pack), 'r').then(
      async (fd) => {
        const header = Buffer.alloc(HEADER_BYTES);
        await fd.read(header, 0, HEADER_BYTES, 0);
        if (decodeHeader(header) !== pack) throw new NotFoundError(`pack ${pack} holds another pack`);
        return fd;
      },
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new NotFoundError(`no pack ${pack}`);
        throw err;
      },
    );
    this.#open.set(pack, opening);
    opening.catch(() => this.#open.delete(pack));
    while (this.#open.size > MAX_OPEN) {
      const [oldest, fd] = this.#open.entries().next().value as [string, Promise<FileHandle>];
      this.#open.delete(oldest);
      void fd.then((h) => h.close()).catch(() => undefined);
    }
    return opening;
  }

  /** Forgets a pack's handle (it was deleted). */
  drop(pack: string): void {
    const fd = this.#open.get(pack);
    this.#open.delete(pack);
    void fd?.then((h) => h.close()).catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(all.map((p) => p.then((h) => h.close()).catch(() => undefined)));
  }
}
