import {
  DirectoryVerifyCap,
  FileReadCap,
  FileVerifyCap,
  LiteralCap,
  SymlinkTarget,
  type Cap,
  type DirectoryCap,
  isDirectoryCap,
} from '../cap/index.js';
import { DirectoryRemovedError, isCapstanError, throwIfAborted, type AbortOptions } from '../errors.js';
import type { Tree } from '../tree/api.js';

/**
 * gc's mark phase: the set of chunk addresses reachable from the roots.
 *
 * Live means: every node blob of the *current* version of every reachable
 * directory and of its version at each of its snapshots (other older
 * versions' nodes are garbage), and every file's manifest and data chunks. Directory slots live in the slot store, not the chunk
 * store, and are never collected.
 *
 * Anything the walk cannot see through makes the mark incomplete, and an
 * incomplete mark MUST NOT be swept: a directory whose slot or node is
 * missing or damaged, a file whose manifest is, a directory held only by a
 * verify cap (its nodes are sealed with the read key), and a cap of a kind
 * this version does not know (a later version's object may own chunks).
 * Each is reported as a problem, by path and never by cap.
 *
 * Bounds: the live set is one CID string per reachable chunk (~120 bytes of
 * heap each: 10^6 chunks, ~120 MB), plus one storage-index string per
 * directory and one manifest string per file to walk each once; directories
 * waiting to be walked are a stack of caps.
 */

export interface MarkProblem {
  /** Root label and slash-separated path below it. */
  path: string;
  detail: string;
}

export interface MarkResult {
  live: Set<string>;
  directories: number;
  files: number;
  problems: MarkProblem[];
}

export interface MarkRoot {
  /** How the root is named in reports: `account alice`, `pin 3`; never the cap. */
  label: string;
  cap: Cap;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

export interface MarkOptions extends AbortOptions {
  /** Called with the result so far after each file and directory (a progress line); must be cheap. */
  onProgress?: (result: Readonly<MarkResult>) => void;
  /**
   * Every snapshot in the slot store: storage index (hex) → epochs. A
   * directory reached that has snapshots is walked at each of them too; a
   * snapshot of a directory no root reaches is a problem (its cap is nowhere
   * else to be found), so nothing is swept.
   */
  snapshots?: ReadonlyMap<string, readonly bigint[]>;
}

export async function markLive(tree: Tree, roots: readonly MarkRoot[], options: MarkOptions = {}): Promise<MarkResult> {
  const result: MarkResult = { live: new Set(), directories: 0, files: 0, problems: [] };
  const seenDirs = new Set<string>();
  const seenFiles = new Set<string>();
  /** Storage indexes whose snapshots are already being walked. */
  const snapshotsReached = new Set<string>();
  const pending: { path: string; cap: DirectoryCap }[] = [];
  const problem = (path: string, err: unknown, what: string): void => {
    if (err !== undefined && !isCapstanError(err)) throw err;
    result.problems.push({ path, detail: err === undefined ? what : `${what}: ${(err as Error).name}` });
  };

  async function visit(path: string, cap: Cap): Promise<void> {
    throwIfAborted(options.signal);
    if (isDirectoryCap(cap)) {
      const si = hex(cap.storageIndex);
      // A snapshot view is another tree than the live one: seen apart.
      const key = cap.readonly().epoch === undefined ? si : `${si}@${cap.readonly().epoch}`;
      if (seenDirs.has(key)) return;
      seenDirs.add(key);
      pending.push({ path, cap });
      const epochs = options.snapshots?.get(si);
      if (epochs !== undefined && !snapshotsReached.has(si)) {
        snapshotsReached.add(si);
        for (const epoch of epochs) await visit(`${path} (snapshot ${epoch})`, cap.readonly().at(epoch));
      }
    } else if (cap instanceof FileReadCap || cap instanceof FileVerifyCap) {
      const key = hex(cap.manifestHash);
      if (seenFiles.has(key)) return;
      seenFiles.add(key);
      result.files++;
      try {
        const list = await tree.fileChunks(cap, options);
        if (list === undefined) return;
        result.live.add(list.manifest.toString());
        for (const chunk of list.chunks) result.live.add(chunk.toString());
      } catch (err) {
        problem(path, err, 'file manifest unreadable');
      }
      options.onProgress?.(result);
    } else if (cap instanceof LiteralCap) {
      result.files++; // held in the cap: nothing stored
    } else if (cap instanceof SymlinkTarget) {
      // A link is only its target's text, inside the directory node already marked: nothing to keep.
    } else if (cap instanceof DirectoryVerifyCap) {
      problem(path, undefined, 'directory held only by a verify cap cannot be walked');
    } else {
      problem(path, undefined, 'entry of a kind this version does not know');
    }
  }

  for (const root of roots) {
    await visit(root.label, root.cap);
    while (pending.length > 0) {
      const { path, cap } = pending.pop()!;
      result.directories++;
      try {
        for await (const node of tree.directory(cap).nodes(options)) {
          result.live.add(node.address);
          for (const entry of node.entries) await visit(`${path}/${entry.name}`, entry.cap);
        }
      } catch (err) {
        // A directory sealed by an rmdir that did not get to unlink its name holds nothing (it was
        // empty when sealed, and nothing reads its nodes again): not a reason to stop collecting.
        if (!(err instanceof DirectoryRemovedError)) problem(path, err, 'directory unreadable');
      }
      options.onProgress?.(result);
    }
  }
  for (const [si, epochs] of options.snapshots ?? []) {
    if (!snapshotsReached.has(si)) {
      result.problems.push({ path: `directory ${si}`, detail: `${epochs.length} snapshot(s) of a directory no root reaches` });
    }
  }
  return result;
}
