import {
  DirectoryReadCap,
  DirectoryWriteCap,
  FileReadCap,
  FileVerifyCap,
  LiteralCap,
  UnknownCap,
  DirectoryVerifyCap,
  parseCap,
  type Cap,
  type DirectoryCap,
  isDirectoryCap,
} from '../cap/index.js';
import { InvalidInputError, NotADirectoryError, NotFoundError } from '../errors.js';
import type { Directory, ResolvedNode, Tree } from '../tree/api.js';

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

/** What CAP/PATH names: the cap itself when there is no path. */
export async function resolveCapPath(tree: Tree, target: CapPath): Promise<ResolvedNode> {
  const { cap, components } = target;
  if (components.length > 0) {
    try {
      return await tree.resolve(asDirectoryCap(cap), components);
    } catch (err) {
      // The tree's messages are generic ("no such entry"); say which path.
      if (err instanceof NotFoundError) throw new NotFoundError(`${components.join('/')}: no such file or directory`, { cause: err });
      if (err instanceof NotADirectoryError)
        throw new NotADirectoryError(`${components.join('/')}: a component of the path is not a directory`, { cause: err });
      throw err;
    }
  }
  if (isDirectoryCap(cap)) return { type: 'directory', cap };
  if (cap instanceof FileReadCap || cap instanceof LiteralCap) return { type: 'file', cap };
  return { type: 'unknown', cap };
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
  return 'unknown';
}
