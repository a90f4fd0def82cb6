import type { AbortOptions } from '../../errors.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import type { SlotEntry, SlotHistory, SlotStore } from '../slots/slot-store.js';

/**
 * A slot store that makes the objects a swap may reference durable first
 * (docs/spec/packs.md, Write order: flush before swap): every
 * compareAndSwap waits for the pack store's flush (the PUT of the pack
 * being built, then its index entries), then swaps. Where slots do not go
 * into the journal (PostgreSQL, or LevelDB beside packs on S3) this keeps
 * the rule that a slot never points at an object a crash could lose.
 * Concurrent swaps share the flush (one PUT for them all).
 */
export class FlushingSlotStore implements SlotStore {
  constructor(
    readonly inner: SlotStore,
    private readonly chunks: ChunkStore,
  ) {}

  get(storageIndex: Uint8Array, options?: AbortOptions): Promise<SlotEntry | undefined> {
    return this.inner.get(storageIndex, options);
  }

  async compareAndSwap(storageIndex: Uint8Array, expectedSeq: bigint | null, next: SlotEntry, options?: AbortOptions): Promise<void> {
    await this.chunks.flush?.(options);
    await this.inner.compareAndSwap(storageIndex, expectedSeq, next, options);
  }

  list(options?: AbortOptions): AsyncIterable<Uint8Array> {
    return this.inner.list(options);
  }

  /** Pins need no flush: a pin's versions were written by swaps that flushed first. */
  get history(): SlotHistory | undefined {
    return this.inner.history;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
