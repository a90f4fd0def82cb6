import { randomFillSync } from 'node:crypto';
import { lstat, mkdir, open, readdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * Test data on local disk. sftp uploads real files, so the data has to
 * exist; it is generated once and then "stamped" before each upload.
 *
 * Why stamp: capstan deduplicates by chunk (a chunk's key is derived from
 * its plaintext), and its store skips a chunk it already has. Uploading the
 * same bytes twice would time a dedup hit, not an upload. A stamp (an
 * upload counter written every 64 KiB) makes every chunk of every upload
 * new, for any chunk size of 64 KiB or more (the default is 1 MiB), at the
 * cost of rewriting a few pages instead of the whole file.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Piece size for generation: bounds the harness's own memory. */
const PIECE = 64 * MiB;
const STAMP_EVERY = 64 * KiB;

/** Writes `size` random bytes to `file` (created or truncated), 64 MiB at a time. */
export async function writeRandomFile(file: string, size: number): Promise<void> {
  const piece = Buffer.allocUnsafe(Math.min(PIECE, Math.max(size, 1)));
  const handle = await open(file, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(piece.length, size - done);
      randomFillSync(piece, 0, n);
      await handle.write(piece, 0, n);
      done += n;
    }
  } finally {
    await handle.close();
  }
}

let stampCounter = BigInt(Date.now()) << 16n;

/** Writes a fresh stamp every 64 KiB of `file` (whose size is `size`), so that no chunk of it was ever uploaded before. */
export async function stampFile(file: string, size: number): Promise<void> {
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64BE(++stampCounter);
  const handle = await open(file, 'r+');
  try {
    for (let at = 0; at + stamp.length <= size; at += STAMP_EVERY) await handle.write(stamp, 0, stamp.length, at);
  } finally {
    await handle.close();
  }
}

/** Creates `count` random files of `size` bytes named f00000… in `dir`; returns their paths. */
export async function writeSmallFiles(dir: string, count: number, size: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  const content = Buffer.allocUnsafe(size);
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `f${String(i).padStart(5, '0')}`);
    randomFillSync(content);
    const handle = await open(file, 'w');
    try {
      await handle.write(content);
    } finally {
      await handle.close();
    }
    files.push(file);
  }
  return files;
}

/** Stamps every file (see stampFile), a few at a time. */
export async function stampFiles(files: string[], size: number): Promise<void> {
  for (let i = 0; i < files.length; i += 32) await Promise.all(files.slice(i, i + 32).map((f) => stampFile(f, size)));
}

/**
 * Total apparent size (st_size) of the regular files under `dir`: "bytes
 * stored". Directories' own sizes are left out (their blocks say more about
 * the filesystem than about the server); symlinks are not followed.
 */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(current, { withFileTypes: true });
    } catch (err) {
      // LevelDB and the chunk store's temp folder may remove files while we walk.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    for (let i = 0; i < entries.length; i += 256) {
      const sizes = await Promise.all(
        entries.slice(i, i + 256).map(async (e) => {
          const full = path.join(current, e.name);
          if (e.isDirectory()) {
            pending.push(full);
            return 0;
          }
          if (!e.isFile()) return 0;
          return lstat(full).then(
            (s) => s.size,
            () => 0,
          );
        }),
      );
      for (const s of sizes) total += s;
    }
  }
  return total;
}
