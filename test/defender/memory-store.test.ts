import { MemoryDefenderStore } from '../../src/defender/index.js';
import { defenderStoreConformance } from '../conformance/defender-store.js';

defenderStoreConformance('MemoryDefenderStore', { setup: async () => new MemoryDefenderStore(), teardown: (store) => store.close() });
