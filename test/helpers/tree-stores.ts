import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { LevelSlotStore } from '../../src/store/slots/level.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import type { SlotStore } from '../../src/store/slots/slot-store.js';

/** A chunk store and a slot store for tree tests; close() also removes what they wrote. */
export interface TreeStores {
  chunks: ChunkStore;
  slots: SlotStore;
  close(): Promise<void>;
}

/**
 * The two pairs tree tests run on: in memory, and on disk (FsChunkStore in a
 * temp folder, LevelSlotStore). `fsync: false` for tests about the slot's
 * compare-and-swap, which LevelSlotStore syncs either way.
 */
export function treeBackends(options: { fsync?: boolean } = {}): { name: string; open(): Promise<TreeStores> }[] {
  return [
    {
      name: 'MemoryChunkStore + MemorySlotStore',
      open: async () => ({ chunks: new MemoryChunkStore(), slots: new MemorySlotStore(), close: async () => {} }),
    },
    {
      name: 'FsChunkStore + LevelSlotStore',
      open: async () => {
        const dir = await mkdtemp(path.join(tmpdir(), 'capstan-tree-'));
        const chunks = await FsChunkStore.open(path.join(dir, 'chunks'), { fsync: options.fsync ?? true });
        const slots = await LevelSlotStore.open(path.join(dir, 'slots'));
        return {
          chunks,
          slots,
          close: async () => {
            await slots.close();
            await chunks.close();
            await rm(dir, { recursive: true, force: true });
          },
        };
      },
    },
  ];
}
