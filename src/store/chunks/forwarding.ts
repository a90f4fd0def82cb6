import type { AbortOptions } from '../../errors.js';
import type {
  ChunkAddress,
  ChunkStat,
  ChunkStore,
  ChunkStoreFeatures,
  CompactOptions,
  CompactResult,
  RepackOptions,
  RepackResult,
} from './chunk-store.js';

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
  readonly flush?: (options?: AbortOptions) => Promise<void>;
  readonly compact?: (options?: CompactOptions) => Promise<CompactResult>;
  readonly repack?: (options?: RepackOptions) => Promise<RepackResult>;
  readonly getInto?: (address: ChunkAddress, target: Uint8Array, options?: AbortOptions) => Promise<Uint8Array | undefined>;
  readonly prefetch?: (addresses: readonly ChunkAddress[]) => void;

  constructor(readonly inner: ChunkStore) {
    // Optional methods exist here exactly when the wrapped store has them.
    if (inner.flush) this.flush = inner.flush.bind(inner);
    if (inner.stat) this.stat = inner.stat.bind(inner);
    if (inner.deleteIfIdleSince) this.deleteIfIdleSince = inner.deleteIfIdleSince.bind(inner);
    if (inner.compact) this.compact = inner.compact.bind(inner);
    if (inner.repack) this.repack = inner.repack.bind(inner);
    if (inner.usage) this.usage = inner.usage.bind(inner);
    if (inner.prefetch) this.prefetch = (addresses) => this.forwardPrefetch(addresses);
    if (inner.getInto) this.getInto = (address, target, options) => this.forwardGetInto(address, target, options);
  }

  /** What getInto does when the inner store has it: forward. A wrapper changing get changes this too. */
  protected forwardGetInto(address: ChunkAddress, target: Uint8Array, options?: AbortOptions): Promise<Uint8Array | undefined> {
    const getInto = this.inner.getInto;
    if (getInto === undefined) throw new TypeError('the wrapped store has no getInto');
    return getInto.call(this.inner, address, target, options);
  }

  /** What prefetch does when the inner store has it: forward. */
  protected forwardPrefetch(addresses: readonly ChunkAddress[]): void {
    this.inner.prefetch?.(addresses);
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
