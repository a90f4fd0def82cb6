import { copyBytes } from '../../util/copy-bytes.js';
import { giveSlot, takeSlot, type ChunkSlot } from './chunk-slots.js';

/** AES-GCM's tag, appended to every sealed chunk. */
export const GCM_TAG_BYTES = 16;
/** Smallest first buffer of a file (see ChunkBuffer.append). */
const MIN_FIRST_BUFFER = 4096;

/**
 * The plaintext chunk a file writer is filling, and the one spare it keeps.
 *
 * A file's first buffer starts at the size of what arrived and doubles up to
 * a chunk, so a 16 KiB file allocates 16 KiB, not 1 MiB: V8 counts every
 * external allocation towards its GC trigger, and a whole chunk per small
 * file made a quarter of the small-file workload's CPU garbage collection.
 * With `shared` (the writer seals on the worker pool), a chunk-sized buffer,
 * and every buffer once the file has outgrown one chunk, is a reused
 * shared-memory slot (chunk-slots.ts) instead; its size leaves room for the
 * sealed chunk's tag, so the same pool serves ciphertext.
 *
 * Bounds: at most one buffer being filled and one spare slot.
 */
export class ChunkBuffer {
  #buffer: Buffer | undefined;
  /** The slot #buffer lives in, if it does. */
  #slot: ChunkSlot | undefined;
  #spare: ChunkSlot | undefined;
  #fill = 0;
  /** Bytes per slot: a chunk sealed (its ciphertext ‖ tag) fits. */
  readonly slotSize: number;

  constructor(
    readonly chunkSize: number,
    private readonly shared: boolean,
  ) {
    this.slotSize = chunkSize + GCM_TAG_BYTES;
  }

  get fill(): number {
    return this.#fill;
  }

  get full(): boolean {
    return this.#fill === this.chunkSize;
  }

  /** The bytes filled so far (a view: valid until the next call). */
  get filled(): Buffer | undefined {
    return this.#buffer?.subarray(0, this.#fill);
  }

  /**
   * Copies as much of `data` as the chunk has room for; answers how many
   * bytes it took. `outgrown`: the file already has a chunk sealed on the
   * pool, so this one needs a slot whatever its size.
   */
  append(data: Uint8Array, outgrown: boolean): number {
    const n = Math.min(this.chunkSize - this.#fill, data.length);
    // WRITE data lies at an odd offset of its packet; the slot is shared memory (copy-bytes.ts).
    copyBytes(this.#roomFor(n, outgrown), data.subarray(0, n), this.#fill);
    this.#fill += n;
    return n;
  }

  /** The chunk as a slot for the seal worker (copied into one if it is not in one); the buffer starts empty again. */
  takeForSealing(): { slot: ChunkSlot; length: number } {
    const length = this.#fill;
    let slot = this.#slot;
    if (slot === undefined) {
      slot = takeSlot(this.slotSize);
      slot.bytes.set(this.#buffer!.subarray(0, length));
    }
    this.#buffer = undefined;
    this.#slot = undefined;
    this.#fill = 0;
    return { slot, length };
  }

  /** Empties the buffer, keeping it for the next chunk (its bytes were sealed in place). */
  clear(): void {
    this.#fill = 0;
  }

  /** A slot the seal worker is done with: kept as the spare while `keep` and none is kept, else back to the pool. */
  returnSlot(slot: ChunkSlot, keep: boolean): void {
    if (this.#spare || !keep) giveSlot(slot);
    else this.#spare = slot;
  }

  /** Gives every slot back; the buffer is empty and unusable until the next append. */
  release(): void {
    if (this.#slot) giveSlot(this.#slot);
    if (this.#spare) giveSlot(this.#spare);
    this.#buffer = undefined;
    this.#slot = undefined;
    this.#spare = undefined;
    this.#fill = 0;
  }

  #roomFor(n: number, outgrown: boolean): Buffer {
    const needed = this.#fill + n;
    if (this.#buffer === undefined && this.#spare !== undefined) {
      this.#slot = this.#spare;
      this.#buffer = this.#spare.bytes.subarray(0, this.chunkSize);
      this.#spare = undefined;
    }
    let buffer = this.#buffer;
    if (buffer === undefined || buffer.length < needed) {
      const size = Math.min(this.chunkSize, Math.max(needed, 2 * (buffer?.length ?? 0), MIN_FIRST_BUFFER));
      let grown: Buffer;
      if (this.shared && (size === this.chunkSize || outgrown)) {
        this.#slot = takeSlot(this.slotSize);
        grown = this.#slot.bytes.subarray(0, this.chunkSize);
      } else {
        grown = Buffer.allocUnsafeSlow(size);
      }
      if (buffer !== undefined) grown.set(buffer.subarray(0, this.#fill));
      buffer = grown;
    }
    this.#buffer = buffer;
    return buffer;
  }
}
