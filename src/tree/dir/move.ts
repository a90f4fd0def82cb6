import { NotFoundError, PermissionError } from '../../errors.js';
import type { Directory, LinkOptions } from '../api.js';
import { checkName } from '../names.js';
import { DirectoryHandle } from './directory.js';

/**
 * Moves an entry from one directory to another: link in `dst`, then unlink
 * in `src`. Two directories are two slots, and no store swaps two slots at
 * once, so the move is not atomic; the order is chosen so that a crash or a
 * failure in between leaves the entry under both names for a moment, never
 * under neither (nothing is ever lost, at worst a duplicate link remains).
 *
 * Within one directory (same storage index) it is `src.rename`, which is atomic.
 * If `src`'s entry is replaced by someone else between the two steps, the
 * replacement is left in place (only the entry that was moved is unlinked).
 * No cycle check: moving a directory under itself makes an unreachable loop,
 * which the caller (the SFTP layer knows paths) must refuse beforehand.
 */
export async function moveEntry(
  src: Directory,
  srcName: string,
  dst: Directory,
  dstName: string,
  options: LinkOptions = {},
): Promise<void> {
  if (sameDirectory(src, dst)) return src.rename(srcName, dstName, options);
  // Refuse up front what the second step would refuse, so a doomed move does not leave a copy in dst.
  if (!src.writable || !dst.writable) throw new PermissionError('directory is read-only');
  const name = checkName(srcName);
  const entry = await src.lookup(name, options);
  if (!entry) throw new NotFoundError('no such entry');
  await dst.link(dstName, entry.cap, entry.metadata, options);
  if (src instanceof DirectoryHandle) {
    await src.unlinkIfCap(name, entry.cap, options);
  } else {
    await src.unlink(name, options);
  }
}

function sameDirectory(a: Directory, b: Directory): boolean {
  const si = (d: Directory): string => Buffer.from(d.cap.storageIndex).toString('hex');
  return si(a) === si(b);
}
