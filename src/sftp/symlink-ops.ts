import { AlreadyExistsError, InvalidInputError, NotFoundError, PermissionError } from '../errors.js';
import { isValidSymlinkTarget, SymlinkTarget } from '../cap/index.js';
import { holds } from '../events/commit-check.js';
import { recordChange } from './event-paths.js';
import { parsePath } from './paths.js';
import type { BeforeLink, SessionQuota } from './quota-hooks.js';
import type { UserTree } from './user-tree.js';

/**
 * SYMLINK, READLINK and REALPATH. The resolution rules (chroot at the
 * path's base, `/uri/` in a target is only names, at most 40 links) are in
 * src/tree/symlinks.ts; this is the SFTP side.
 */

/**
 * SYMLINK (the request's fields already in OpenSSH's order: target, then the
 * new link's path). The target is stored as given, byte for byte; it may
 * dangle or point anywhere, as symlink(2) allows, because it is only
 * resolved when used, and then inside the base. A name that exists is
 * FAILURE (EEXIST), as from OpenSSH's server.
 */
export async function symlink(view: UserTree, target: Uint8Array, linkRaw: string, quota?: SessionQuota): Promise<void> {
  if (!isValidSymlinkTarget(target)) throw new InvalidInputError('bad symbolic link target');
  const loc = await view.locateEntry(linkRaw);
  view.requireWritable(loc);
  if (view.uploads(loc).length > 0) throw new AlreadyExistsError('exists');
  const now = Date.now();
  const link = new SymlinkTarget(target);
  await recordChange(view, 'symlink', loc.path, async (begin) => {
    await begin([holds(loc.dir, loc.name, link, now)]);
    const run = (beforeLink?: BeforeLink) =>
      loc.dir.link(loc.name, link, { size: target.length, mtimeMs: now, ctimeMs: now }, { overwrite: false, beforeLink });
    // A link is one more entry and no bytes: only the file quota can refuse it.
    await (quota !== undefined ? quota.link({ bytes: 0, files: 1 }, run) : run());
  });
}

/** READLINK: the target's bytes; a name that is not a link is BAD_MESSAGE (EINVAL), as from OpenSSH. */
export async function readlink(view: UserTree, raw: string): Promise<Uint8Array> {
  const loc = await view.locate(raw);
  if (loc.kind === 'base') throw new InvalidInputError('not a symbolic link');
  const entry = await loc.dir.lookup(loc.name);
  if (entry === undefined) throw new NotFoundError('no such file');
  if (!(entry.cap instanceof SymlinkTarget)) throw new InvalidInputError('not a symbolic link');
  return entry.cap.target;
}

/**
 * REALPATH: the canonical path with every link resolved (inside the base).
 * A path that does not resolve (a missing directory on the way, say) keeps
 * the textual answer capstan always gave, which OpenSSH's sftp needs for
 * `put` to a new name; a loop is still an error.
 */
export async function realpath(view: UserTree, raw: string): Promise<string> {
  try {
    return (await view.locate(raw, true)).path.canonical;
  } catch (err) {
    if (err instanceof NotFoundError || (err instanceof Error && err.name === 'NotADirectoryError')) return parsePath(raw).canonical;
    if (err instanceof PermissionError) return parsePath(raw).canonical;
    throw err;
  }
}
