import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { slotStoreConformance } from '../conformance/slot-store.js';

slotStoreConformance('MemorySlotStore', { setup: async () => new MemorySlotStore(), teardown: (store) => store.close(), history: true });
