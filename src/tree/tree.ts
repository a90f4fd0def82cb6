import {
  DirectoryReadCap,
  DirectoryVerifyCap,
  DirectoryWriteCap,
  FileReadCap,
  LiteralCap,
  type DirectoryCap,
  type FileCap,
  type FileVerifyCap,
  isDirectoryCap,
} from '../cap/index.js';
import { randomBytes } from '../crypto/index.js';
import { InvalidInputError, NotADirectoryError, NotFoundError, PermissionError, type AbortOptions } from '../errors.js';
import type { ChunkStore } from '../store/chunks/chunk-store.js';
import type { SlotStore } from '../store/slots/slot-store.js';
import type {
  ChecksumAlgorithm,
  DirEntry,
  Directory,
  FileChunkList,
  FileReader,
  FileWriter,
  ResolvedNode,
  Snapshot,
  Tree,
  TreeOptions,
} from './api.js';
import { createSnapshot, listSnapshots, removeSnapshot } from './snapshots.js';
import { KeyedMutex } from '../util/keyed-mutex.js';
import type { MemoryBudget } from '../util/memory-budget.js';
import { DEFAULT_LAYOUT, type DirectoryContext, type DirectoryLayout, type DirectoryUpdate, type SlotRollback } from './dir/context.js';
import { createDirectory } from './dir/create.js';
import { DirectoryHandle } from './dir/directory.js';
import { DEFAULT_NODE_CACHE_BYTES, NodeCache } from './dir/node-cache.js';
import { VerifiedSlots } from './dir/verified-slots.js';
import { MemorySlotWatermarks, type SlotWatermarks } from './dir/watermarks.js';
import * as files from './file/index.js';
import { checksumSetOf } from './file/format.js';

export interface CreateTreeOptions extends TreeOptions {
  chunks: ChunkStore;
  slots: SlotStore;
  /** Bound, in bytes, of the decoded directory-node cache shared by every directory (default 16 MiB). */
  nodeCacheBytes?: number;
  /**
   * The highest seq seen per directory, to refuse rollbacks (docs/spec/slots.md).
   * Default: in memory, for this Tree's lifetime; a node passes its durable one
   * (src/node/slot-watermarks.ts). The caller closes it.
   */
  watermarks?: SlotWatermarks;
  /** Told of each rollback refused. */
  onRollback?: (rollback: SlotRollback) => void;
  /** Told of each directory update that wrote a version or gave up: the compare-and-swaps it took. */
  onDirectoryUpdate?: (update: DirectoryUpdate) => void;
}

/**
 * Knobs for tests and benchmarks only, never for a gateway: a fixed random
 * source makes directory bytes reproducible (test/vectors/dirs.json), and a
 * different layout lets bench/dir-growth.ts measure the alternatives.
 * Not exported from src/tree/index.ts.
 */
export interface TreeInternals {
  randomBytes?: (n: number) => Uint8Array;
  layout?: DirectoryLayout;
  maxAttempts?: number;
}

/**
 * Compare-and-swap attempts per directory mutation before TransientError.
 * With the pauses of directory.ts (random, below a cap that doubles to
 * 200 ms) that is about a minute of losing every race. It was 64 (about ten
 * seconds) until one CI run failed a CLOSE in the test where 8 clients
 * upload into one directory through two gateways on a loaded 2-core
 * machine; it did not happen again in eight reruns, and losing many races in
 * a row is the likeliest cause (a failing mutation is now logged at warn,
 * see src/sftp/status.ts). An SFTP client waits for its CLOSE without a
 * timeout, so waiting longer beats failing the upload.
 */
export const DEFAULT_MAX_ATTEMPTS = 256;
/** Longest path resolve() walks; a bound on work, far beyond any real tree. */
export const MAX_RESOLVE_DEPTH = 1024;

/**
 * The tree layer's facade over one ChunkStore and one SlotStore. One per
 * gateway, shared by all sessions: it holds only the node cache, so any
 * number of Trees (in one process or many) may serve the same stores.
 * close() drops the cache; the stores belong to the caller, who closes them.
 */
export function createTree(options: CreateTreeOptions): Tree {
  return createTreeWithInternals(options, {});
}

export function createTreeWithInternals(options: CreateTreeOptions, internals: TreeInternals): Tree {
  return new CapstanTree(options, internals);
}

class CapstanTree implements Tree {
  private readonly ctx: DirectoryContext;
  private readonly chunkSize: number | undefined;
  private readonly checksums: readonly ChecksumAlgorithm[] | undefined;
  private readonly memory: MemoryBudget | undefined;

  constructor(options: CreateTreeOptions, internals: TreeInternals) {
    const { chunks, slots } = options;
    this.chunkSize = options.chunkSize;
    this.memory = options.memory;
    // Refused here, at startup, rather than at the first upload.
    if (options.checksums !== undefined) checksumSetOf(options.checksums);
    this.checksums = options.checksums === undefined ? undefined : [...options.checksums];
    const ctx: DirectoryContext = {
      chunks,
      slots,
      cache: new NodeCache(options.nodeCacheBytes ?? DEFAULT_NODE_CACHE_BYTES),
      verifiedSlots: new VerifiedSlots(),
      watermarks: options.watermarks ?? new MemorySlotWatermarks(),
      onRollback: options.onRollback,
      onUpdate: options.onDirectoryUpdate,
      layout: internals.layout ?? DEFAULT_LAYOUT,
      randomBytes: internals.randomBytes ?? randomBytes,
      maxAttempts: internals.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      locks: new KeyedMutex(),
      createDirectory: (opts) => createDirectory(ctx, opts),
    };
    this.ctx = ctx;
  }

  createDirectory(options?: AbortOptions): Promise<DirectoryWriteCap> {
    return createDirectory(this.ctx, options);
  }

  directory(cap: DirectoryCap): Directory {
    if (!(cap instanceof DirectoryWriteCap) && !(cap instanceof DirectoryReadCap)) {
      throw new InvalidInputError('not a readable directory cap');
    }
    return new DirectoryHandle(this.ctx, cap);
  }

  async resolve(root: DirectoryCap, components: readonly string[], options: AbortOptions = {}): Promise<ResolvedNode> {
    if (components.length > MAX_RESOLVE_DEPTH) throw new InvalidInputError('path too deep');
    let dir = this.directory(root);
    if (components.length === 0) return { type: 'directory', cap: root };
    for (let i = 0; ; i++) {
      const entry = await dir.lookup(components[i]!, options);
      if (!entry) throw new NotFoundError('no such entry');
      if (i === components.length - 1) return resolvedNode(entry);
      const cap = entry.cap;
      if (isDirectoryCap(cap)) {
        // A read-only directory's lookup already returned a read cap, so
        // everything below it resolves read-only too.
        dir = this.directory(cap);
      } else if (cap instanceof DirectoryVerifyCap) {
        throw new PermissionError('directory cannot be read with the cap held');
      } else {
        throw new NotADirectoryError('not a directory');
      }
    }
  }

  createFileWriter(convergence: Uint8Array): FileWriter {
    return files.createFileWriter(this.ctx.chunks, convergence, {
      chunkSize: this.chunkSize,
      checksums: this.checksums,
      memory: this.memory,
    });
  }

  get maxFileSize(): number {
    return files.maxFileSize(this.chunkSize ?? files.DEFAULT_CHUNK_SIZE);
  }

  openFile(cap: FileCap, options?: AbortOptions): Promise<FileReader> {
    return files.openFile(this.ctx.chunks, cap, { ...options, memory: this.memory });
  }

  fileChunks(cap: FileCap | FileVerifyCap, options?: AbortOptions): Promise<FileChunkList | undefined> {
    return files.fileChunks(this.ctx.chunks, cap, options);
  }

  createSnapshot(cap: DirectoryWriteCap, options?: AbortOptions & { scheduledAt?: number | undefined }): Promise<Snapshot> {
    return createSnapshot(this.ctx.slots, this.directory(cap), Date.now(), options);
  }

  listSnapshots(cap: DirectoryCap, options?: AbortOptions): Promise<Snapshot[]> {
    return listSnapshots(this.ctx.slots, cap, options);
  }

  removeSnapshot(cap: DirectoryReadCap, options?: AbortOptions): Promise<void> {
    return removeSnapshot(this.ctx.slots, cap, options);
  }

  async close(): Promise<void> {
    this.ctx.cache.clear();
    this.ctx.verifiedSlots.clear();
  }
}

function resolvedNode(entry: DirEntry): ResolvedNode {
  const cap = entry.cap;
  if (isDirectoryCap(cap)) return { type: 'directory', cap, entry };
  if (cap instanceof FileReadCap || cap instanceof LiteralCap) return { type: 'file', cap, entry };
  return { type: 'unknown', cap, entry };
}
