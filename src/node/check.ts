import { FileReadCap, FileVerifyCap, LiteralCap, SymlinkTarget, type Cap, type DirectoryCap, isDirectoryCap } from '../cap/index.js';
import { DirectoryRemovedError, IntegrityError, NotFoundError, isCapstanError } from '../errors.js';
import type { ChunkAddress, ChunkStore } from '../store/index.js';
import type { Tree } from '../tree/api.js';

/**
 * `capstan check`: walks everything reachable from a cap and reports what is
 * missing or damaged.
 *
 * - Directories are read through the tree, which verifies the slot record's
 *   signature and every directory node it reads (hash-checked by the chunk
 *   store's get), so directories are always fully verified.
 * - Files: the manifest is read and verified (tree.fileChunks); each data
 *   chunk is asked for with has() (is it there?), or with `verify`, read with
 *   get() (which re-hashes it and throws IntegrityError on a mismatch).
 *
 * Problems are reported by path, never by cap. Bounds: directories already
 * seen are remembered by storage index (one short string per directory, so a
 * cycle or a directory linked twice is walked once); directories waiting to
 * be walked are a stack of caps; at most CHUNK_CONCURRENCY chunk requests are
 * in flight.
 */

/** `removed`: a directory sealed by an rmdir that did not get to unlink its name (rmdir the name to finish). */
export type ProblemKind = 'missing' | 'corrupt' | 'unreadable' | 'removed';

export interface CheckProblem {
  /** Slash-separated path from the checked cap ('' for the cap itself). */
  path: string;
  kind: ProblemKind;
  /** What was wrong with it: 'directory', 'manifest', 'chunk N of M', …; never a secret. */
  detail: string;
}

export interface CheckReport {
  directories: number;
  files: number;
  chunks: number;
  /** Entries whose caps this version does not understand; passed over, not an error. */
  unknown: number;
  /** Bytes of chunks read back and re-hashed (verify only; 0 otherwise). */
  bytes: number;
  problems: CheckProblem[];
}

export interface CheckOptions {
  verify?: boolean;
  /** Called for each problem as it is found, so a long check reports progressively. */
  onProblem?: (problem: CheckProblem) => void;
  /** Called with the report so far after each chunk, file and directory (a progress line); must be cheap. */
  onProgress?: (report: Readonly<CheckReport>) => void;
}

const CHUNK_CONCURRENCY = 8;

function classify(err: unknown): ProblemKind {
  if (err instanceof DirectoryRemovedError) return 'removed';
  if (err instanceof NotFoundError) return 'missing';
  if (err instanceof IntegrityError) return 'corrupt';
  return 'unreadable';
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

export async function checkCap(tree: Tree, chunks: ChunkStore, root: Cap, options: CheckOptions = {}): Promise<CheckReport> {
  const report: CheckReport = { directories: 0, files: 0, chunks: 0, unknown: 0, bytes: 0, problems: [] };
  const progress = (): void => options.onProgress?.(report);
  const problem = (path: string, kind: ProblemKind, detail: string): void => {
    const p = { path, kind, detail };
    report.problems.push(p);
    options.onProblem?.(p);
  };
  const join = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

  async function checkChunk(address: ChunkAddress): Promise<void> {
    if (options.verify) {
      // Not `report.bytes += await …`: that reads the total before the await and loses concurrent additions.
      const bytes = await chunks.get(address);
      report.bytes += bytes.length;
    } else if (!(await chunks.has(address))) {
      throw new NotFoundError('chunk missing');
    }
  }

  async function checkFile(path: string, cap: FileReadCap | FileVerifyCap): Promise<void> {
    report.files++;
    let list: Awaited<ReturnType<typeof tree.fileChunks>>;
    try {
      list = await tree.fileChunks(cap);
    } catch (err) {
      if (!isCapstanError(err)) throw err;
      problem(path, classify(err), 'manifest');
      return;
    }
    if (list === undefined) return;
    const addresses = list.chunks;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        const address = addresses[i];
        if (address === undefined) return;
        report.chunks++;
        try {
          await checkChunk(address);
        } catch (err) {
          if (!isCapstanError(err)) throw err;
          problem(path, classify(err), `chunk ${i + 1} of ${addresses.length} (${address.toString()})`);
        }
        progress();
      }
    };
    await Promise.all(Array.from({ length: Math.min(CHUNK_CONCURRENCY, addresses.length) }, worker));
  }

  const seen = new Set<string>();
  const pending: { path: string; cap: DirectoryCap }[] = [];

  async function visit(path: string, cap: Cap): Promise<void> {
    if (isDirectoryCap(cap)) {
      const key = hex(cap.storageIndex);
      if (!seen.has(key)) {
        seen.add(key);
        pending.push({ path, cap });
      }
    } else if (cap instanceof FileReadCap || cap instanceof FileVerifyCap) {
      await checkFile(path, cap);
    } else if (cap instanceof LiteralCap) {
      report.files++; // held in the cap itself: nothing stored to check
    } else if (cap instanceof SymlinkTarget) {
      // A link holds no data (its target is text in the node just read), and is not followed.
    } else {
      report.unknown++;
    }
    progress();
  }

  await visit('', root);
  while (pending.length > 0) {
    const { path, cap } = pending.pop()!;
    report.directories++;
    try {
      for await (const entry of tree.directory(cap).list()) await visit(join(path, entry.name), entry.cap);
    } catch (err) {
      if (!isCapstanError(err)) throw err;
      const kind = classify(err);
      problem(
        path,
        kind,
        kind === 'removed' ? 'directory sealed by an rmdir that did not finish: rmdir it again to remove the name' : 'directory',
      );
    }
    progress();
  }
  return report;
}
