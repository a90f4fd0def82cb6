import { randomBytes } from 'node:crypto';
import { open, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Edits go to the file a symlink points at, so a symlinked file stays a symlink. */
async function writeTarget(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return path;
    throw err;
  }
}

/**
 * Replaces `path` with `text` (UTF-8, or bytes) so that a reader sees the old file or the new
 * one, never part of either, even across a crash: a temp file (mode 0600)
 * in the same directory, fsync, rename over the original, fsync of the
 * directory. Used for every small file capstan rewrites (accounts, quotas,
 * usage, pins, packs on a shared fs). Two writers at once: the last rename wins.
 * With `sync` false (`fs.fsync = false`) neither fsync is made: still never
 * a partial file, but not durable across a power loss.
 */
export async function writeFileAtomic(path: string, text: string | Uint8Array, options: { sync?: boolean } = {}): Promise<void> {
  const sync = options.sync ?? true;
  const target = await writeTarget(path);
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    try {
      await fh.chmod(0o600); // open's mode is filtered by the umask
      await fh.writeFile(text);
      if (sync) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (!sync) return;
  // Make the rename itself durable; not every platform lets a directory be fsynced.
  const dh = await open(dir, 'r').catch(() => undefined);
  if (dh !== undefined) {
    await dh.sync().catch(() => undefined);
    await dh.close();
  }
}
