import { storageIndexHex } from './slot-limits.js';
import type { SnapshotPin } from './slot-store.js';

/**
 * The pins of a slot store held in memory (docs/spec/snapshots.md), indexed
 * for the three questions asked on hot paths: does a pin cover a version
 * that lived over [from, until) (every swap, while any pin exists), is
 * there a pin at an epoch (every read of a snapshot), and which pins does
 * one root have (every /.snapshots/ lookup). Each is a binary search or a
 * map lookup; adding and removing a pin is linear in the pins, which are
 * taken at most a few per root and hour.
 */
export class PinSet {
  /** Every pin's epoch, ascending (epochs are unique per store). */
  readonly #epochs: bigint[] = [];
  /** Root (hex) → its pins, ascending by epoch. */
  readonly #byRoot = new Map<string, SnapshotPin[]>();

  get size(): number {
    return this.#epochs.length;
  }

  add(pin: SnapshotPin): void {
    this.#epochs.splice(
      lowerBound(this.#epochs, pin.epoch, (e) => e),
      0,
      pin.epoch,
    );
    const key = storageIndexHex(pin.root);
    const list = this.#byRoot.get(key) ?? [];
    list.splice(lowerBound(list, pin.epoch, byEpoch), 0, { ...pin, root: new Uint8Array(pin.root) });
    this.#byRoot.set(key, list);
  }

  /** Removes the pin of `root` at `epoch`; false if there is none. */
  delete(root: Uint8Array, epoch: bigint): boolean {
    const key = storageIndexHex(root);
    const list = this.#byRoot.get(key);
    const at = list === undefined ? -1 : lowerBound(list, epoch, byEpoch);
    if (list === undefined || list[at]?.epoch !== epoch) return false;
    list.splice(at, 1);
    if (list.length === 0) this.#byRoot.delete(key);
    this.#epochs.splice(
      lowerBound(this.#epochs, epoch, (e) => e),
      1,
    );
    return true;
  }

  has(epoch: bigint): boolean {
    return this.#epochs[lowerBound(this.#epochs, epoch, (e) => e)] === epoch;
  }

  /** True if some pin E has from ≤ E < until: it needs the version that lived then. */
  covers(from: bigint, until: bigint): boolean {
    const first = this.#epochs[lowerBound(this.#epochs, from, (e) => e)];
    return first !== undefined && first < until;
  }

  /** One root's pins, or every pin, ascending by epoch (copies). */
  list(root: Uint8Array | undefined): SnapshotPin[] {
    const pins = root === undefined ? [...this.#byRoot.values()].flat() : (this.#byRoot.get(storageIndexHex(root)) ?? []);
    const out = pins.map((pin) => ({ ...pin, root: new Uint8Array(pin.root) }));
    if (root === undefined) out.sort((a, b) => (a.epoch < b.epoch ? -1 : a.epoch > b.epoch ? 1 : 0));
    return out;
  }
}

const byEpoch = (pin: SnapshotPin): bigint => pin.epoch;

/** The first position in `items` (ascending by `of`) whose epoch is not below `epoch`. */
function lowerBound<T>(items: readonly T[], epoch: bigint, of: (item: T) => bigint): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (of(items[mid]!) < epoch) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
