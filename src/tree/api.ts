import type { AbortOptions } from '../errors.js';
import type { Cap, DirectoryCap, DirectoryReadCap, DirectoryWriteCap, FileCap, FileVerifyCap } from '../cap/index.js';
import type { ChunkAddress } from '../store/chunks/chunk-store.js';
import type { MemoryBudget } from '../util/memory-budget.js';

/**
 * The tree layer's public surface: immutable files and mutable directories,
 * built on a ChunkStore and a SlotStore. The SFTP frontend and the CLI use
 * only this; they never see chunks, manifests or slots.
 */

/** The whole-file digests a manifest can record. */
export type ChecksumAlgorithm = 'sha256' | 'md5' | 'sha1';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['sha256', 'md5', 'sha1'];

/**
 * Plaintext digests recorded in a file's manifest, so they cost nothing
 * later. SHA-256 always; MD5 and SHA-1 only when the writer was asked to
 * record them (TreeOptions.checksums, docs/spec/files.md "Manifest v2").
 * A literal file has all three (computed from its inline bytes).
 */
export interface Checksums {
  sha256: Uint8Array;
  md5?: Uint8Array;
  sha1?: Uint8Array;
}

export interface UploadResult {
  cap: FileCap;
  size: number;
  checksums: Checksums;
}

/**
 * A streaming upload. Bytes are chunked, hashed, encrypted and stored as they
 * arrive; finish() only writes the manifest, so closing a 5 GiB upload costs
 * one small object, not a second pass.
 *
 * - write() MUST apply backpressure: it resolves once the bytes are buffered
 *   within the writer's stated memory bound (a few chunks), so a fast sender
 *   never grows memory with file size.
 * - finish() resolves only after every chunk and the manifest are stored; if
 *   any put failed, finish() rejects with that error and nothing references
 *   the chunks already written (they are garbage for gc).
 * - abort() drops everything; later calls reject with AbortError.
 */
export interface FileWriter {
  readonly size: number;
  write(data: Uint8Array, options?: AbortOptions): Promise<void>;
  finish(options?: AbortOptions): Promise<UploadResult>;
  abort(): void;
}

/**
 * Random-access reads of an immutable file. read() touches only the chunks
 * holding the requested range, and keeps a small bounded cache of decrypted
 * chunks for sequential readers. A chunk or manifest that fails its checks
 * throws IntegrityError; never wrong bytes.
 */
export interface FileReader {
  readonly size: number;
  /** The digests the manifest records (a literal: all three). */
  checksums(options?: AbortOptions): Promise<Checksums>;
  /**
   * One digest of the whole file: the manifest's when it records it,
   * otherwise computed by streaming the file (bounded memory, as stream()).
   */
  checksum(algorithm: ChecksumAlgorithm, options?: AbortOptions): Promise<Uint8Array>;
  /** Up to `length` bytes at `offset`; shorter only at end of file, empty at or past it. */
  read(offset: number, length: number, options?: AbortOptions): Promise<Uint8Array>;
  /**
   * read() into the caller's buffer: up to `target.length` bytes at
   * `offset` are copied into `target` from its start; answers how many
   * (fewer only at end of file). For a caller that has its own buffer to
   * fill (an SFTP DATA packet), which saves read()'s allocation and copy.
   */
  readInto(offset: number, target: Uint8Array, options?: AbortOptions): Promise<number>;
  /** The whole file (or a range), in order, bounded memory. */
  stream(start?: number, end?: number, options?: AbortOptions): AsyncIterable<Uint8Array>;
  /** Gives back what the reader holds of a memory budget (a chunk read ahead); reads after it still work. */
  close?(): void;
}

/** Per-entry metadata kept in the directory (not in the immutable file). Times are Unix milliseconds. */
export interface EntryMetadata {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  atimeMs?: number;
  /** All write bits removed (chmod a-w); writes through this name are refused. */
  noWrite?: boolean;
  /**
   * A file's execute bits (chmod +x): listed as 0755 instead of 0644, so
   * that a script or a program copied in and out keeps them. Grants and
   * refuses nothing; ignored on anything but a file.
   */
  executable?: boolean;
}

/**
 * One directory entry. `cap` is the strongest cap the directory's holder may
 * have: a child's write cap only when the directory was opened with its write
 * cap (child write caps are sealed so read-cap holders cannot recover them).
 */
export interface DirEntry {
  name: string;
  cap: Cap;
  metadata: EntryMetadata;
}

export interface LinkOptions extends AbortOptions {
  /** Replace an existing entry of that name (default false: AlreadyExistsError). */
  overwrite?: boolean | undefined;
  /**
   * Called with the entry a link or rename is about to replace, inside the
   * same atomic update (it may run once per attempt): throw to refuse, for
   * example IsADirectoryError so that an upload never replaces a directory
   * made under its name after it looked.
   */
  replacing?: ((existing: DirEntry) => void) | undefined;
  /**
   * Called by link inside the same atomic update, after `replacing`, with
   * what the name holds at that attempt (undefined: nothing). It may run once
   * per attempt; when link resolves, the last call saw exactly the entry that
   * was replaced. Throw to refuse (a quota reservation that does not fit).
   */
  beforeLink?: ((existing: DirEntry | undefined) => Promise<void>) | undefined;
  /**
   * The new entry keeps the `executable` of the entry it replaces (a new
   * version of a file keeps its mode, as open(O_TRUNC) does), unless its
   * own metadata says executable.
   */
  keepExecutable?: boolean | undefined;
}

export interface MkdirOptions extends AbortOptions {
  /**
   * Called with the new directory's cap after it is created and before it is
   * linked (the link is the update that makes the mkdir): an event intent
   * names the new entry here. Throwing refuses the mkdir (the new directory
   * is then an unreachable orphan, as after a lost race).
   */
  beforeLink?: ((child: DirectoryWriteCap) => Promise<void>) | undefined;
}

/** One directory node as gc sees it: its chunk address (CID string) and the entries in it. */
export interface DirectoryNodeView {
  address: string;
  entries: DirEntry[];
}

/**
 * A mutable directory. Every mutation is a compare-and-swap on the slot: on
 * ConflictError it re-reads, re-applies and retries (bounded), so concurrent
 * writers through any number of Directory objects or gateways never lose an
 * update. Mutations on a read-only cap throw PermissionError.
 * Names are kept byte for byte (no Unicode normalization); '', '.', '..', names with '/' or NUL, and names
 * over 255 UTF-8 bytes throw InvalidInputError.
 */
export interface Directory {
  readonly cap: DirectoryCap;
  readonly writable: boolean;
  /** All entries, streamed in no particular order; memory bounded by one node. */
  list(options?: AbortOptions): AsyncIterable<DirEntry>;
  lookup(name: string, options?: AbortOptions): Promise<DirEntry | undefined>;
  /**
   * For gc: every node blob of the current version (each is a chunk) with the
   * entries it holds (none for a branch node); memory bounded as for list.
   * Older versions' nodes are not yielded: they are garbage.
   */
  nodes(options?: AbortOptions): AsyncIterable<DirectoryNodeView>;
  /** Number of entries, from the root node (cheap). */
  count(options?: AbortOptions): Promise<number>;
  /** Links `cap` under `name`; returns the entry it replaced (with `overwrite`), if any. */
  link(name: string, cap: Cap, metadata: EntryMetadata, options?: LinkOptions): Promise<DirEntry | undefined>;
  /**
   * Compare-and-set of one entry, atomically: if `name` holds `expected`
   * (compared as the cap this view hands out; null: the name is free), it is
   * set to `next` (null: removed) and true is returned; otherwise nothing
   * changes and false is returned. For the two-step operations that must
   * not undo someone else's change (moves, rmdir). With `expectedMetadata`,
   * the entry's metadata must be exactly that too (a move's undo: only the
   * entry this move wrote, not the same cap linked there by another move).
   */
  swapEntry(
    name: string,
    expected: Cap | null,
    next: { cap: Cap; metadata: EntryMetadata } | null,
    options?: AbortOptions & { expectedMetadata?: EntryMetadata | undefined },
  ): Promise<boolean>;
  /**
   * Makes this directory's version final (docs/spec/slots.md, Removing a
   * directory): NotEmptyError unless it has no entry; sealing a sealed one
   * does nothing. Afterwards every operation on it is NotFoundError.
   * Resolves true when the directory is sealed; false when it is shared
   * (see share): then it was found empty and nothing was written.
   */
  seal(options?: AbortOptions): Promise<boolean>;
  /**
   * Marks this directory shared (docs/spec/slots.md, Shared directories): it
   * may have several names, so seal will never seal it again; the mark is
   * kept by every later version and cannot be cleared. Needs the write cap;
   * NotFoundError (DirectoryRemovedError) for a sealed directory; marking a
   * shared one does nothing.
   */
  share(options?: AbortOptions): Promise<void>;
  /** Undoes seal (an rmdir that lost its unlink); does nothing to a directory that is not sealed. */
  unseal(options?: AbortOptions): Promise<void>;
  /** Removes and returns the entry; NotFoundError if absent. */
  unlink(name: string, options?: AbortOptions): Promise<DirEntry>;
  /** Merges `patch` into an existing entry's metadata; NotFoundError if absent. */
  setMetadata(name: string, patch: Partial<EntryMetadata>, options?: AbortOptions): Promise<DirEntry>;
  /** Atomic rename within this directory (one slot update); returns the entry it replaced under `to`, if any. */
  rename(from: string, to: string, options?: LinkOptions): Promise<DirEntry | undefined>;
  /** Creates a new empty directory and links it here; AlreadyExistsError if the name is taken. */
  mkdir(name: string, metadata?: Partial<EntryMetadata>, options?: MkdirOptions): Promise<DirectoryWriteCap>;
}

/** What a path resolves to. */
export type ResolvedNode =
  | { type: 'directory'; cap: DirectoryCap; entry?: DirEntry }
  | { type: 'file'; cap: FileCap; entry?: DirEntry }
  | { type: 'unknown'; cap: Cap; entry?: DirEntry };

/** Every chunk address reachable from a file, for check and gc (needs only the verify cap). */
export interface FileChunkList {
  manifest: ChunkAddress;
  chunks: ChunkAddress[];
}

export interface TreeOptions {
  /** Immutable-file chunk size in bytes (default in docs/spec/files.md). */
  chunkSize?: number | undefined;
  /**
   * Whole-file digests new manifests record; MUST include sha256 (default:
   * all three, the v1 manifest). Without md5 or sha1 the manifest is v2
   * (docs/spec/files.md); readers compute a missing digest on demand.
   */
  checksums?: readonly ChecksumAlgorithm[] | undefined;
  /**
   * The gateway's memory budget (src/util/memory-budget.ts): file writers
   * take the chunks they seal and store beyond the first one in flight from
   * it, readers the chunk they fetch ahead; refused, they go one at a time.
   * None: each writer and reader is bounded on its own only.
   */
  memory?: MemoryBudget | undefined;
}

/** A snapshot of a directory tree (docs/spec/snapshots.md): its `DIR-SNAP` cap, its point and when it was taken. */
export interface Snapshot {
  cap: DirectoryReadCap;
  epoch: bigint;
  createdMs: number;
}

/** The facade: one per gateway (or CLI invocation), shared by all sessions. */
export interface Tree {
  createDirectory(options?: AbortOptions): Promise<DirectoryWriteCap>;
  directory(cap: DirectoryCap): Directory;
  /**
   * Walks `components` (already split, each a single name) from `root`.
   * NotFoundError if a component is missing, NotADirectoryError if a file is
   * walked through.
   */
  resolve(root: DirectoryCap, components: readonly string[], options?: AbortOptions): Promise<ResolvedNode>;
  /** A writer whose chunk keys derive from `convergence` (see src/crypto/convergence.ts). */
  createFileWriter(convergence: Uint8Array): FileWriter;
  /** The largest file such a writer accepts (the manifest's limit at this tree's chunk size). */
  readonly maxFileSize: number;
  openFile(cap: FileCap, options?: AbortOptions): Promise<FileReader>;
  /** For check/gc: the manifest and chunk addresses of a file, from its read or verify cap. */
  fileChunks(cap: FileCap | FileVerifyCap, options?: AbortOptions): Promise<FileChunkList | undefined>;
  /** Takes a snapshot of the tree under a directory write cap, in O(1); `scheduledAt`: the schedule's period start. */
  createSnapshot(cap: DirectoryWriteCap, options?: AbortOptions & { scheduledAt?: number | undefined }): Promise<Snapshot>;
  /** The snapshots of a directory, oldest first. */
  listSnapshots(cap: DirectoryCap, options?: AbortOptions): Promise<Snapshot[]>;
  /** Removes the snapshot a DIR-SNAP cap names (NotFoundError if it is gone). */
  removeSnapshot(cap: DirectoryReadCap, options?: AbortOptions): Promise<void>;
  close(): Promise<void>;
}
