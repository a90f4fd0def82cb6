import {
  FileReadCap,
  FileVerifyCap,
  LiteralCap,
  SymlinkTarget,
  UnknownCap,
  DirectoryVerifyCap,
  parseCap,
  type Cap,
  type DirectoryCap,
  isDirectoryCap,
} from '../cap/index.js';
import { InvalidInputError, NotADirectoryError, NotFoundError } from '../errors.js';
import type { DirEntry, Directory, ResolvedNode, Tree } from '../tree/api.js';
import { resolvePath } from '../tree/symlinks.js';

/**
 * `CAP/PATH` arguments: the cap is everything before the first `/`, the rest
 * is a slash-separated path below it (empty components are skipped, so
 * `CAP/a//b/` is `CAP/a/b`). Messages never contain the cap.
 */
export interface CapPath {
  cap: Cap;
  components: string[];
}

export function parseCapPath(text: string): CapPath {
  const slash = text.indexOf('/');
  const capText = slash < 0 ? text : text.slice(0, slash);
  const rest = slash < 0 ? '' : text.slice(slash + 1);
  if (capText === '') throw new InvalidInputError('expected CAP/PATH, where CAP is a capstan cap (CS1:…), got a path without a cap');
  const cap = parseCap(capText);
  if (cap instanceof UnknownCap) throw new InvalidInputError('expected CAP/PATH, where CAP is a capstan cap (CS1:…)');
  const components = rest.split('/').filter((c) => c !== '');
  for (const c of components) {
    if (c === '.' || c === '..') throw new InvalidInputError('"." and ".." are not allowed in a CAP/PATH');
  }
  if (components.length > 0 && !isDirectoryCap(cap)) {
    throw new InvalidInputError('a path below a cap needs a directory read or write cap');
  }
  return { cap, components };
}

export function asDirectoryCap(cap: Cap): DirectoryCap {
  if (isDirectoryCap(cap)) return cap;
  throw new NotADirectoryError('not a directory');
}

function nodeOf(cap: Cap, entry?: DirEntry): ResolvedNode {
  const withEntry = entry !== undefined ? { entry } : {};
  if (isDirectoryCap(cap)) return { type: 'directory', cap, ...withEntry };
  if (cap instanceof FileReadCap || cap instanceof LiteralCap) return { type: 'file', cap, ...withEntry };
  return { type: 'unknown', cap, ...withEntry };
}

/**
 * What CAP/PATH names: the cap itself when there is no path. Symbolic links
 * on the way are followed inside CAP (chroot semantics, src/tree/symlinks.ts:
 * an absolute target starts at CAP, `..` stops there); the last one too,
 * unless `followLast` is false (then the link itself, for `ls -l` of a link).
 */
export async function resolveCapPath(tree: Tree, target: CapPath, followLast = true): Promise<ResolvedNode> {
  const { cap, components } = target;
  if (components.length > 0) {
    try {
      const walk = await resolvePath(tree, asDirectoryCap(cap), components, followLast);
      if (walk.name === undefined) {
        const own = walk.frames.at(-1);
        return own === undefined ? nodeOf(cap) : nodeOf(own.cap, own.entry);
      }
      if (walk.entry === undefined) throw new NotFoundError('no such entry');
      return nodeOf(walk.entry.cap, walk.entry);
    } catch (err) {
      // The tree's messages are generic ("no such entry"); say which path.
      if (err instanceof NotFoundError) throw new NotFoundError(`${components.join('/')}: no such file or directory`, { cause: err });
      if (err instanceof NotADirectoryError)
        throw new NotADirectoryError(`${components.join('/')}: a component of the path is not a directory`, { cause: err });
      throw err;
    }
  }
  return nodeOf(cap);
}

/** The directory holding the last component of CAP/PATH, and that component's name. */
export async function resolveParent(tree: Tree, target: CapPath): Promise<{ dir: Directory; name: string }> {
  const { cap, components } = target;
  const name = components[components.length - 1];
  if (name === undefined) throw new InvalidInputError('expected CAP/PATH with a path below the cap');
  const parent = await resolveCapPath(tree, { cap, components: components.slice(0, -1) });
  if (parent.type !== 'directory') throw new NotADirectoryError(`${components.slice(0, -1).join('/')} is not a directory`);
  return { dir: tree.directory(parent.cap), name };
}

/** A short word for a cap's kind, for listings. */
export function kindOf(cap: Cap): string {
  if (isDirectoryCap(cap) || cap instanceof DirectoryVerifyCap) return 'dir';
  if (cap instanceof FileReadCap || cap instanceof LiteralCap || cap instanceof FileVerifyCap) return 'file';
  if (cap instanceof SymlinkTarget) return 'link';
  return 'unknown';
}
