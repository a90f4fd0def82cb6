import { InvalidInputError, throwIfAborted, type AbortOptions } from '../errors.js';
import type { ChunkStore } from '../store/chunk-store.js';

/**
 * gc's sweep phase: every stored chunk that is not live and was last put
 * before `now - graceMs` is deleted (or, dry, counted).
 *
 * The grace period is what makes gc safe beside a serving gateway: chunks of
 * an upload in flight, and directory nodes written but not yet linked by the
 * slot compare-and-swap, are unreachable when the mark runs but were put
 * moments ago. A put of bytes already stored refreshes their age (ChunkStore
 * stat contract), so an upload that deduplicates against old garbage is
 * protected too, and deleteIfIdleSince closes the race with a put arriving
 * mid-delete. So the rule for operators: grace MUST exceed the longest
 * upload (an in-order upload streams its chunks into the store from its
 * first WRITE until CLOSE links it; an out-of-order one is spooled and
 * chunked at CLOSE) plus the time gc's mark takes.
 */

export interface SweepOptions extends AbortOptions {
  graceMs: number;
  dryRun: boolean;
  /** The clock, for tests. */
  now?: number;
  /** Called with the result so far after each listed chunk (a progress line); must be cheap. */
  onProgress?: (result: Readonly<SweepResult>) => void;
}

export interface SweepResult {
  /** Chunks the store listed. */
  stored: number;
  live: number;
  /** Unreachable but put within the grace period: kept this time. */
  young: number;
  /** Deleted (or, dry, would be). */
  freed: number;
  freedBytes: number;
}

export function canSweep(store: ChunkStore): boolean {
  return store.features.list && store.features.delete && store.stat !== undefined && store.deleteIfIdleSince !== undefined;
}

export async function sweep(store: ChunkStore, live: ReadonlySet<string>, options: SweepOptions): Promise<SweepResult> {
  if (!canSweep(store)) throw new InvalidInputError('this chunk store cannot tell chunk ages; gc is not supported on it');
  if (!(options.graceMs >= 0)) throw new InvalidInputError('grace must be a non-negative number');
  const cutoff = (options.now ?? Date.now()) - options.graceMs;
  const result: SweepResult = { stored: 0, live: 0, young: 0, freed: 0, freedBytes: 0 };
  for await (const address of store.list(options)) {
    throwIfAborted(options.signal);
    result.stored++;
    options.onProgress?.(result);
    if (live.has(address.toString())) {
      result.live++;
      continue;
    }
    if (options.dryRun) {
      const stat = await store.stat!(address, options);
      if (stat === undefined) continue;
      if (stat.lastPutMs >= cutoff) result.young++;
      else {
        result.freed++;
        result.freedBytes += stat.bytes;
      }
      continue;
    }
    const freed = await store.deleteIfIdleSince!(address, cutoff, options);
    if (freed === undefined) result.young++;
    else {
      result.freed++;
      result.freedBytes += freed;
    }
  }
  return result;
}
