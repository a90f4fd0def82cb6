/** A half-open range of integers [start, end). */
export interface Range {
  start: number;
  end: number;
}

/**
 * A set of non-negative integers kept as disjoint half-open ranges, sorted,
 * with touching ranges merged: what a sparse file uses to know which bytes
 * it holds. add and clip are O(log n) to find and O(n) to splice; the owner
 * bounds n (the spool fills its smallest gap once it holds too many ranges).
 */
export class RangeSet {
  readonly #ranges: Range[] = [];

  /** Number of disjoint ranges. */
  get count(): number {
    return this.#ranges.length;
  }

  /** Adds [start, end), merging with every range it overlaps or touches. */
  add(start: number, end: number): void {
    if (end <= start) return;
    // The first range that reaches start (it may touch or overlap), and every one after it that begins by end.
    const first = this.#firstEndingAtOrAfter(start);
    let last = first;
    for (let r = this.#ranges[last]; r !== undefined && r.start <= end; r = this.#ranges[++last]) {
      start = Math.min(start, r.start);
      end = Math.max(end, r.end);
    }
    this.#ranges.splice(first, last - first, { start, end });
  }

  /** Drops everything at or past `limit`. */
  clip(limit: number): void {
    // Ranges before `keep` end at or before limit; the one at `keep` may straddle it.
    const keep = this.#firstEndingAtOrAfter(limit + 1);
    const straddling = this.#ranges[keep];
    if (straddling !== undefined && straddling.start < limit) {
      straddling.end = limit;
      this.#ranges.length = keep + 1;
    } else {
      this.#ranges.length = keep;
    }
  }

  /**
   * The pieces of [start, end) in order, each inside the set (`held`) or
   * outside it, together covering exactly [start, end).
   */
  *pieces(start: number, end: number): Generator<Range & { held: boolean }> {
    let at = start;
    for (
      let i = this.#firstEndingAtOrAfter(start + 1), r = this.#ranges[i];
      r !== undefined && r.start < end && at < end;
      r = this.#ranges[++i]
    ) {
      if (r.start > at) yield { start: at, end: r.start, held: false };
      const e = Math.min(end, r.end);
      yield { start: Math.max(at, r.start), end: e, held: true };
      at = e;
    }
    if (at < end) yield { start: at, end, held: false };
  }

  /** The smallest gap between two ranges, or undefined when there are fewer than two. */
  smallestGap(): Range | undefined {
    let best: Range | undefined;
    let previous: Range | undefined;
    for (const r of this.#ranges) {
      if (previous !== undefined && (best === undefined || r.start - previous.end < best.end - best.start)) {
        best = { start: previous.end, end: r.start };
      }
      previous = r;
    }
    return best;
  }

  /** Index of the first range whose end is ≥ `value` (the count if none). */
  #firstEndingAtOrAfter(value: number): number {
    let lo = 0;
    let hi = this.#ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#ranges[mid]?.end ?? value) < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
