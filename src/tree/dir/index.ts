export { DirectoryHandle } from './directory.js';
export { createDirectory, FIRST_SEQ } from './create.js';
export { linkShared, moveEntry, removeDirectory } from './move.js';
export { DEFAULT_LAYOUT, type DirectoryContext, type DirectoryLayout } from './context.js';
export { DEFAULT_NODE_CACHE_BYTES, NodeCache } from './node-cache.js';
export { NODE_FORMAT_VERSION } from './node-format.js';
export { SLOT_FORMAT_VERSION, verifySlotRecord, type SlotVersion } from './slot-record.js';
