/**
 * The tree layer: immutable files (./file, docs/spec/files.md) and mutable
 * directories (./dir, docs/spec/directories.md and slots.md) behind the Tree
 * facade. The SFTP layer and the CLI import from here only.
 */
export { CHECKSUM_ALGORITHMS } from './api.js';
export type {
  ChecksumAlgorithm,
  Checksums,
  DirEntry,
  Directory,
  DirectoryNodeView,
  EntryMetadata,
  FileChunkList,
  FileReader,
  FileWriter,
  LinkOptions,
  MkdirOptions,
  ResolvedNode,
  Snapshot,
  Tree,
  TreeOptions,
  UploadResult,
} from './api.js';
export { createTree, DEFAULT_MAX_ATTEMPTS, MAX_RESOLVE_DEPTH, type CreateTreeOptions } from './tree.js';
export type { DirectoryUpdate, SlotRollback } from './dir/context.js';
export { MemorySlotWatermarks, type SlotWatermarks } from './dir/watermarks.js';
export { checkName, MAX_NAME_BYTES } from './names.js';
export { HOUR_MS, isScheduledTime, snapshotNames } from './snapshots.js';
export {
  linkShared,
  moveEntry,
  removeDirectory,
  DEFAULT_LAYOUT,
  DEFAULT_NODE_CACHE_BYTES,
  NODE_FORMAT_VERSION,
  SLOT_FORMAT_VERSION,
  type DirectoryLayout,
} from './dir/index.js';
export {
  createFileWriter,
  openFile,
  fileChunks,
  uploadBytes,
  DEFAULT_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  type FileWriterOptions,
} from './file/index.js';
export { MAX_SYMLINK_FOLLOWS, resolvePath, targetText, type PathFrame, type ResolvedPath } from './symlinks.js';
