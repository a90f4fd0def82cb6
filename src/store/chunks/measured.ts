import type { AbortOptions } from '../../errors.js';
import { ForwardingChunkStore, type ChunkAddress, type ChunkStore } from '../index.js';
import { Histogram } from '../../util/metrics.js';

export const MEASURED_OPERATIONS = ['put', 'get', 'has', 'delete'] as const;
export type MeasuredOperation = (typeof MEASURED_OPERATIONS)[number];

/**
 * A ChunkStore that times every put, get, has and delete of the store it
 * wraps and counts their failures, for /metrics. Wrap, don't modify: the
 * inner store and its contract are untouched; results and errors pass
 * through unchanged. list and usage are walks, not operations worth a
 * latency figure, so they pass through untimed.
 */
export class MeasuredChunkStore extends ForwardingChunkStore {
  readonly latency: Record<MeasuredOperation, Histogram>;
  readonly errors: Record<MeasuredOperation, number>;

  constructor(inner: ChunkStore) {
    super(inner);
    this.latency = { put: new Histogram(), get: new Histogram(), has: new Histogram(), delete: new Histogram() };
    this.errors = { put: 0, get: 0, has: 0, delete: 0 };
  }

  override put(bytes: Uint8Array, options?: AbortOptions): Promise<ChunkAddress> {
    return this.time('put', () => this.inner.put(bytes, options));
  }

  override get(address: ChunkAddress, options?: AbortOptions): Promise<Uint8Array> {
    return this.time('get', () => this.inner.get(address, options));
  }

  /** Timed as a get: it is one, into the caller's buffer. */
  protected override forwardGetInto(address: ChunkAddress, target: Uint8Array, options?: AbortOptions): Promise<Uint8Array | undefined> {
    return this.time('get', () => super.forwardGetInto(address, target, options));
  }

  override has(address: ChunkAddress, options?: AbortOptions): Promise<boolean> {
    return this.time('has', () => this.inner.has(address, options));
  }

  override delete(address: ChunkAddress, options?: AbortOptions): Promise<void> {
    return this.time('delete', () => this.inner.delete(address, options));
  }

  private async time<T>(op: MeasuredOperation, call: () => Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    try {
      return await call();
    } catch (err) {
      this.errors[op]++;
      throw err;
    } finally {
      this.latency[op].observe(Number(process.hrtime.bigint() - start) / 1e9);
    }
  }
}
