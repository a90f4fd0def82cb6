import { type DirectoryCap, DirectoryVerifyCap, isDirectoryCap, SymlinkTarget } from '../cap/index.js';
import { type AbortOptions, InvalidInputError, NotADirectoryError, NotFoundError, PermissionError, TooManyLinksError } from '../errors.js';
import type { DirEntry, Tree } from './api.js';
import { checkName } from './names.js';
import { MAX_RESOLVE_DEPTH } from './tree.js';

/**
 * Path resolution through symbolic links, as a chrooted OpenSSH resolves
 * them (docs/spec/directories.md, Symbolic links):
 *
 * - The walk starts at a base (an account's root, or a /uri cap the client
 *   gave) and nothing is above it: `..` at the base stays there, and an
 *   absolute target starts again from the base, exactly as `/` inside a
 *   chroot is the chroot. A link can therefore never lead out of the tree
 *   the walk started in.
 * - A target is only names. `/uri/CS1:…` in a target is the entry `uri` and
 *   then an entry named `CS1:…`, never a cap: a link must not be a way to
 *   use a cap the reader does not hold.
 * - `..` in a target is physical: it leaves the directory the walk is in,
 *   not the last name typed (as the kernel does).
 * - At most MAX_SYMLINK_FOLLOWS links per resolution, as Linux's 40: more is
 *   TooManyLinksError (a loop, or a chain too long), never a hang.
 * - A target whose bytes are not UTF-8 names nothing (no capstan name can
 *   hold them): NotFoundError, as for such a path from a client.
 */
export const MAX_SYMLINK_FOLLOWS = 40;

/** One directory on the resolved path below the base: its name, cap and its own entry in its parent. */
export interface PathFrame {
  readonly name: string;
  readonly cap: DirectoryCap;
  readonly entry: DirEntry;
}

/**
 * Where a path leads. `name` undefined: the last directory of `frames` (or
 * the base itself when `frames` is empty). Otherwise `name` in that
 * directory, with `entry` if it exists (a link when `followLast` was false).
 */
export interface ResolvedPath {
  readonly frames: readonly PathFrame[];
  readonly name?: string | undefined;
  readonly entry?: DirEntry | undefined;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function targetText(link: SymlinkTarget): string {
  try {
    return strictUtf8.decode(link.target);
  } catch {
    throw new NotFoundError('no such file');
  }
}

const isLastStep = (pending: readonly string[]): boolean => pending.every((p) => p === '' || p === '.');

/**
 * Resolves `components` (names, as a client path's already are) from `base`.
 * Intermediate links are always followed; the last one only with
 * `followLast` (stat, open), not without (lstat, remove, rename, readlink).
 */
export async function resolvePath(
  tree: Tree,
  base: DirectoryCap,
  components: readonly string[],
  followLast: boolean,
  options: AbortOptions = {},
): Promise<ResolvedPath> {
  const frames: PathFrame[] = [];
  const pending = [...components];
  let follows = 0;
  let steps = 0;
  while (!isLastStep(pending)) {
    // Bounds the work of 40 targets of up to 4,095 bytes each; no real path comes near it.
    if (++steps > MAX_RESOLVE_DEPTH * 4) throw new InvalidInputError('path too long');
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      frames.pop();
      continue;
    }
    const name = checkName(part);
    const last = isLastStep(pending);
    const dir = tree.directory(frames.at(-1)?.cap ?? base);
    const entry = await dir.lookup(name, options);
    if (entry !== undefined && entry.cap instanceof SymlinkTarget && (!last || followLast)) {
      if (++follows > MAX_SYMLINK_FOLLOWS) throw new TooManyLinksError('too many levels of symbolic links');
      const text = targetText(entry.cap);
      if (text.startsWith('/')) frames.length = 0;
      pending.unshift(...text.split('/'));
      continue;
    }
    if (last) return { frames, name, entry };
    if (entry === undefined) throw new NotFoundError('no such file');
    if (isDirectoryCap(entry.cap)) frames.push({ name, cap: entry.cap, entry });
    else if (entry.cap instanceof DirectoryVerifyCap) throw new PermissionError('directory cannot be read with the cap held');
    else throw new NotADirectoryError('not a directory');
  }
  return { frames };
}
