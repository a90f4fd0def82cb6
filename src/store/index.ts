export type { ChunkAddress, ChunkStat, ChunkStore, ChunkStoreFeatures } from './chunk-store.js';
export type { SlotEntry, SlotStore } from './slot-store.js';
export {
  addressOf,
  assertChunkAddress,
  isChunkAddress,
  parseAddress,
  verifyChunk,
  MAX_CHUNK_BYTES,
  SHA2_256_CODE,
} from './address.js';
export { MemoryChunkStore } from './memory-chunk-store.js';
export { FsChunkStore, type FsChunkStoreOptions } from './fs-chunk-store.js';
export {
  MAX_SLOT_RECORD_BYTES,
  MAX_SLOT_SEQ,
  STORAGE_INDEX_BYTES,
  checkStorageIndex,
  storageIndexHex,
} from './slot-limits.js';
export { MemorySlotStore } from './memory-slot-store.js';
export { LevelSlotStore, isLevelLocked, encodeSlotValue, decodeSlotValue } from './level-slot-store.js';
export {
  serveSlotStore,
  openSharedSlotStore,
  SocketSlotStore,
  type SlotStoreServer,
  type ServeSlotStoreOptions,
  type SocketSlotStoreOptions,
} from './slot-store-socket.js';
export { ForwardingChunkStore } from './forwarding-chunk-store.js';
