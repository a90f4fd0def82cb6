import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { readFullyAt } from '../../util/read-fully.js';
import { PACK_OBJECT_NAME, type PackObjects } from './pack-objects.js';

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/**
 * Packs as files `<dir>/<16 hex>.pack` in a directory several gateways share
 * (`[storage] fs.dir`/shared-packs with PostgreSQL slots). A put is
 * writeFileAtomic: a temporary file, synced, renamed into place, the
 * directory synced (with `fsync` false, as `fs.fsync = false` asks, neither sync):
 * one durable write per pack, and a reader sees a pack whole or not at all.
 * Each gateway names its packs with random ids, so gateways never write the
 * same file.
 */
export class FsPackObjects implements PackObjects {
  private constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
  ) {}

  static async open(dir: string, options: { fsync?: boolean } = {}): Promise<FsPackObjects> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new FsPackObjects(dir, options.fsync ?? true);
  }

  put(pack: string, bytes: Uint8Array): Promise<void> {
    return writeFileAtomic(this.#file(pack), bytes, { sync: this.fsync });
  }

  async read(pack: string, offset: number, length: number): Promise<Uint8Array> {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(this.#file(pack), 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') throw new NotFoundError(`no pack ${pack}`);
      throw err;
    }
    try {
      const out = new Uint8Array(length);
      // Fewer at the end: the pack is shorter than the index says.
      const done = await readFullyAt(fh.fd, out, offset);
      return done === length ? out : out.subarray(0, done);
    } finally {
      await fh.close();
    }
  }

  async list(): Promise<{ pack: string; bytes: number; modifiedMs: number }[]> {
    const out: { pack: string; bytes: number; modifiedMs: number }[] = [];
    for (const name of await readdir(this.dir)) {
      const m = PACK_OBJECT_NAME.exec(name);
      if (m?.[1] === undefined) continue;
      const s = await stat(path.join(this.dir, name)).catch((err: unknown) => {
        if (errno(err) === 'ENOENT') return undefined; // removed while listing
        throw err;
      });
      if (s !== undefined) out.push({ pack: m[1], bytes: s.size, modifiedMs: s.mtimeMs });
    }
    return out;
  }

  async remove(pack: string): Promise<void> {
    await unlink(this.#file(pack)).catch((err: unknown) => {
      if (errno(err) !== 'ENOENT') throw err;
    });
  }

  #file(pack: string): string {
    if (!/^[0-9a-f]{16}$/.test(pack)) throw new NotFoundError('not a pack name');
    return path.join(this.dir, `${pack}.pack`);
  }
}
