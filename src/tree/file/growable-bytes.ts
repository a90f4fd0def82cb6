/**
 * Fixed-width records in one buffer that doubles as it fills (the chunk
 * count is unknown until finish). Amortized O(1) per record, at most 2× the
 * final size, and no per-record object.
 */
export class GrowableBytes {
  #buffer = new Uint8Array(0);
  constructor(private readonly width: number) {}

  reserve(index: number): void {
    const needed = (index + 1) * this.width;
    if (needed <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2, 64 * this.width));
    grown.set(this.#buffer);
    this.#buffer = grown;
  }

  set(index: number, record: Uint8Array): void {
    if (record.length !== this.width) throw new RangeError('record of the wrong width');
    this.reserve(index);
    this.#buffer.set(record, index * this.width);
  }

  bytes(count: number): Uint8Array {
    return this.#buffer.subarray(0, count * this.width);
  }
}
