import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { chunkStoreConformance } from '../conformance/chunk-store.js';

/** Reaches into the private map: the only way to rot bytes held in memory. */
const heldBytes = (store: unknown) => (store as { chunks: Map<string, Uint8Array> }).chunks;

chunkStoreConformance('MemoryChunkStore', {
  setup: async () => new MemoryChunkStore(),
  teardown: (store) => store.close(),
  corrupt: async (store, address) => {
    heldBytes(store).get(address.toString())![0]! ^= 0x01;
  },
  truncate: async (store, address) => {
    const key = address.toString();
    heldBytes(store).set(key, heldBytes(store).get(key)!.subarray(1));
  },
});
