import { randomInt } from 'node:crypto';
import { type Cap, DirectoryWriteCap } from '../../cap/index.js';
import { type AbortOptions, NotEmptyError, NotFoundError, PermissionError } from '../../errors.js';
import type { DirEntry, Directory, EntryMetadata, LinkOptions } from '../api.js';
import { checkName } from '../names.js';

/**
 * Moves an entry from one directory to another: link in `dst`, then unlink
 * in `src` only if the source name still holds the moved cap. Two
 * directories are two slots, and no store swaps two slots at once; the order
 * is chosen so that a crash in between leaves the entry under both names for
 * a moment, never under neither.
 *
 * If the source name no longer holds the moved cap when the second step runs
 * (a remove, a rename or a replace of it won the race), the move fails with
 * NotFoundError and undoes its first step: the destination name gets back
 * what it held before (nothing, or the entry the link replaced), if it still
 * holds the moved cap. So a racing remove and move never both succeed, as on
 * one disk (docs/spec/slots.md, Moves across directories).
 *
 * Within one directory (same storage index) it is `src.rename`, which is atomic.
 * Returns the entry the move replaced under `dstName` (undefined: none).
 * No cycle check: moving a directory under itself makes an unreachable loop,
 * which the caller (the SFTP layer knows paths) must refuse beforehand.
 */
export async function moveEntry(
  src: Directory,
  srcName: string,
  dst: Directory,
  dstName: string,
  options: LinkOptions = {},
): Promise<DirEntry | undefined> {
  if (sameDirectory(src, dst)) return src.rename(srcName, dstName, options);
  // Refuse up front what the second step would refuse, so a doomed move does not leave a copy in dst.
  if (!src.writable || !dst.writable) throw new PermissionError('directory is read-only');
  const name = checkName(srcName);
  const entry = await src.lookup(name, options);
  if (!entry) throw new NotFoundError('no such entry');
  // The moved entry gets a ctime of its own (a move changes the entry, as rename(2) changes an inode's ctime):
  // two moves of one entry to one name then write two different entries, and the undo below takes back only
  // its own. Without it, a move that lost the race would undo the winner's link of the same cap, and the
  // entry would be in neither directory (two processors claiming one file: test/tree/dir-claim.test.ts).
  const linked: EntryMetadata = { ...entry.metadata, ctimeMs: moveStamp() };
  const replaced: DirEntry | undefined = await dst.link(dstName, entry.cap, linked, options);
  if (await src.swapEntry(name, entry.cap, null, options)) return replaced;
  const previous = replaced === undefined ? null : { cap: replaced.cap, metadata: replaced.metadata };
  await dst.swapEntry(dstName, entry.cap, previous, { ...options, expectedMetadata: linked });
  throw new NotFoundError('the entry was removed or replaced while it was being moved');
}

/**
 * Now, in Unix milliseconds, with a random fraction below a millisecond:
 * at today's magnitudes an f64 keeps about 12 bits below the millisecond,
 * so two moves stamped in the same millisecond differ but for 1 in 4096.
 */
function moveStamp(): number {
  return Date.now() + randomInt(1, 1 << 20) / (1 << 20);
}

/**
 * Removes the directory linked under `name` in `parent` (rmdir). A write-cap
 * entry is sealed first, then unlinked only if the name still holds it; if
 * it no longer does (renamed or replaced meanwhile) the seal is undone and
 * the removal fails with NotFoundError. A shared directory (linked by
 * `capstan ln`, see linkShared) is checked empty instead of sealed, and only
 * this name goes: its other names keep working. A read-cap entry (a read-only link:
 * nothing can be written through it, and it cannot be sealed) is unlinked if
 * the directory is empty. docs/spec/slots.md, Removing a directory, has the
 * rule and the crash argument. `check` sees the entry first and may refuse
 * (not a directory, read-only, uploads open in it). Returns the entry removed.
 */
export async function removeDirectory(
  parent: Directory,
  name: string,
  open: (entry: DirEntry) => Directory,
  options: AbortOptions & {
    check?: ((entry: DirEntry) => void) | undefined;
    /** After check, before the first update (an event intent names the entry here). */
    before?: ((entry: DirEntry) => Promise<void>) | undefined;
  } = {},
): Promise<DirEntry> {
  const entry = await parent.lookup(name, options);
  if (entry === undefined) throw new NotFoundError('no such directory');
  options.check?.(entry);
  await options.before?.(entry);
  const child = open(entry);
  if (entry.cap instanceof DirectoryWriteCap) {
    // false: a shared directory, found empty and left unsealed (its other names live on).
    const sealed = await child.seal(options);
    if (await parent.swapEntry(name, entry.cap, null, options)) return entry;
    if (sealed) await child.unseal(options);
    throw new NotFoundError('the directory was moved or replaced while it was being removed');
  }
  if ((await child.count(options)) > 0) throw new NotEmptyError('directory not empty');
  if (await parent.swapEntry(name, entry.cap, null, options)) return entry;
  throw new NotFoundError('the directory was moved or replaced while it was being removed');
}

/**
 * Links an existing cap under `name` in `dir` (`capstan ln`). A directory
 * write cap is marked shared first (Directory.share), whether the link is
 * the write cap or, with `readonly`, its read cap: the directory now has a
 * name its other holders do not know of, and an rmdir of any one name must
 * not seal it under the others. Sharing first means a directory that rmdir
 * sealed meanwhile is refused (NotFoundError) instead of linked dead.
 * Linking never strengthens: the entry holds `cap` or something weaker.
 * Returns the entry replaced (with `overwrite`), if any.
 */
export async function linkShared(
  dir: Directory,
  name: string,
  cap: Cap,
  metadata: EntryMetadata,
  open: (cap: DirectoryWriteCap) => Directory,
  options: LinkOptions & { readonly?: boolean | undefined } = {},
): Promise<DirEntry | undefined> {
  if (cap instanceof DirectoryWriteCap) await open(cap).share(options);
  const linked = options.readonly === true ? cap.readonly() : cap;
  return dir.link(name, linked, metadata, options);
}

function sameDirectory(a: Directory, b: Directory): boolean {
  const si = (d: Directory): string => d.cap.storageIndexHex;
  return si(a) === si(b);
}
