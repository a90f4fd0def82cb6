export type { ChunkAddress, ChunkStat, ChunkStore, ChunkStoreFeatures } from './chunks/chunk-store.js';
export type { SlotEntry, SlotStore } from './slots/slot-store.js';
export {
  addressKey,
  addressOf,
  assertChunkAddress,
  isChunkAddress,
  parseAddress,
  verifyChunk,
  MAX_CHUNK_BYTES,
  SHA2_256_CODE,
} from './address.js';
export { MemoryChunkStore } from './chunks/memory.js';
export { FsChunkStore, type FsChunkStoreOptions } from './chunks/fs/fs-chunk-store.js';
export {
  MAX_SLOT_RECORD_BYTES,
  MAX_SLOT_SEQ,
  STORAGE_INDEX_BYTES,
  checkStorageIndex,
  storageIndexHex,
} from './slots/slot-limits.js';
export { MemorySlotStore } from './slots/memory.js';
export { LevelSlotStore, isLevelLocked, encodeSlotValue, decodeSlotValue } from './slots/level.js';
export { serveNodeStores, type NodeSocketServer, type NodeStores, type ServeNodeStoresOptions } from './socket/server.js';
export { SocketChunkStore, SocketClient, SocketSlotStore, type SocketSlotStoreOptions } from './socket/client.js';
export { ForwardingChunkStore } from './chunks/forwarding.js';
