import type { AbortOptions } from '../errors.js';
import type { ChunkAddress, ChunkStat, ChunkStore, ChunkStoreFeatures } from './chunk-store.js';

/**
 * A ChunkStore that passes every call to the store it wraps: the base for
 * wrappers that change one or two operations (measure, count, inject faults)
 * and must leave the rest, and the inner store's contract, untouched.
 * The optional methods are present exactly when the inner store has them,
 * so a caller's feature checks (`if (store.stat)`) see through the wrapper.
 */
export class ForwardingChunkStore implements ChunkStore {
  readonly stat?: (address: ChunkAddress, options?: AbortOptions) => Promise<ChunkStat | undefined>;
  readonly deleteIfIdleSince?: (address: ChunkAddress, cutoffMs: number, options?: AbortOptions) => Promise<number | undefined>;
  readonly usage?: (options?: AbortOptions) => Promise<{ chunks: number; bytes: number }>;

  constructor(readonly inner: ChunkStore) {
    if (inner.stat) this.stat = (address, options) => inner.stat!(address, options);
    if (inner.deleteIfIdleSince)
      this.deleteIfIdleSince = (address, cutoffMs, options) => inner.deleteIfIdleSince!(address, cutoffMs, options);
    if (inner.usage) this.usage = (options) => inner.usage!(options);
  }

  get features(): ChunkStoreFeatures {
    return this.inner.features;
  }
  put(bytes: Uint8Array, options?: AbortOptions): Promise<ChunkAddress> {
    return this.inner.put(bytes, options);
  }
  get(address: ChunkAddress, options?: AbortOptions): Promise<Uint8Array> {
    return this.inner.get(address, options);
  }
  has(address: ChunkAddress, options?: AbortOptions): Promise<boolean> {
    return this.inner.has(address, options);
  }
  delete(address: ChunkAddress, options?: AbortOptions): Promise<void> {
    return this.inner.delete(address, options);
  }
  list(options?: AbortOptions): AsyncIterable<ChunkAddress> {
    return this.inner.list(options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
