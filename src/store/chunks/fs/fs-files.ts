import { promises as fsp, type Dir } from 'node:fs';
import { TransientError } from '../../../errors.js';

// File-system helpers of FsChunkStore (fs-chunk-store.ts) and its layout (fs-layout.ts).

/** errno codes that say "try again", as opposed to a broken disk or a bug. */
const TRANSIENT_CODES = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR', 'ETIMEDOUT']);

/** A regular file's size and mtime, or undefined when there is none. */
export async function statFile(file: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const stat = await fsp.stat(file);
    return stat.isFile() ? { size: stat.size, mtimeMs: stat.mtimeMs } : undefined;
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw classify(err);
  }
}

export function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** Typed errors pass through; errno codes that may clear up become TransientError; the rest stay as they are (a bug or a broken disk). */
export function classify(err: unknown): unknown {
  const code = errno(err);
  if (code !== undefined && TRANSIENT_CODES.has(code)) {
    return new TransientError(`chunk store file operation failed (${code})`, { cause: err });
  }
  return err;
}

/** A Dir to iterate (which closes itself when the loop ends or breaks), or nothing if the directory vanished. */
export async function openDirectory(dir: string): Promise<Dir | []> {
  try {
    return await fsp.opendir(dir);
  } catch (err) {
    if (errno(err) === 'ENOENT') return [];
    throw classify(err);
  }
}
