import { isDirectoryCap } from '../cap/index.js';
import type { Cap, DirectoryCap } from '../cap/index.js';
import type { DirEntry, Tree } from '../tree/index.js';

export interface TreeUsage {
  /** Sum of the logical sizes of the files reachable from the root. */
  bytes: number;
  /** Number of file and symbolic-link entries (directories are not counted). */
  files: number;
}

/**
 * What one entry adds to an account's usage: a file its size and one file,
 * a symbolic link one file and no bytes, a directory nothing (its entries
 * count for themselves), nothing at all: nothing.
 */
export function entryUsage(entry: Pick<DirEntry, 'cap' | 'metadata'> | undefined): TreeUsage {
  if (entry === undefined) return { bytes: 0, files: 0 };
  const { cap } = entry;
  if (cap.kind === 'file-read' || cap.kind === 'literal')
    return { bytes: entry.metadata?.size ?? (cap as Cap & { size: number }).size, files: 1 };
  if (cap.kind === 'symlink') return { bytes: 0, files: 1 };
  return { bytes: 0, files: 0 };
}

/**
 * Walks an account's logical tree: every file entry reachable from `root`
 * counts its size (an entry's recorded size, else its cap's). A directory
 * reached twice (linked under two names) is walked once; a file linked
 * twice counts twice (two names the user sees). Memory: the set of
 * directories seen (32 bytes each) plus one listing batch; time: one listing
 * per directory, so this runs once per account, not per write.
 */
export async function countTree(tree: Tree, root: DirectoryCap, signal?: AbortSignal): Promise<TreeUsage> {
  const seen = new Set<string>();
  const pending: DirectoryCap[] = [root];
  let bytes = 0;
  let files = 0;
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const key = dir.storageIndexHex;
    if (seen.has(key)) continue;
    seen.add(key);
    for await (const entry of tree.directory(dir).list({ signal })) {
      if (isDirectoryCap(entry.cap)) pending.push(entry.cap);
      const counted = entryUsage(entry);
      bytes += counted.bytes;
      files += counted.files;
    }
  }
  return { bytes, files };
}
