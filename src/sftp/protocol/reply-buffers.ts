import { LIMITS } from './constants.js';
import { DATA_HEADER_BYTES } from './replies.js';

/**
 * The buffers DATA replies are built in, reused once the connection has
 * taken their bytes, one pool for the whole gateway.
 *
 * A download answers each READ with up to 255 KiB. A fresh buffer per reply
 * is a fresh allocation of that size every 0.8 ms at 300 MB/s: its first
 * touch faults its pages in, and the external memory it adds makes V8
 * collect sooner. Measured on Node 20 (2-core EPYC), 1 GiB of such replies
 * filled from one source: 214–248 ms of CPU into fresh buffers, 22 ms into
 * one reused buffer.
 *
 * A buffer comes back through `release`, which SftpTransport calls from the
 * write callback of the packet: by then the stream no longer needs the
 * bytes (SftpByteStream's contract; ssh2 has copied them into its own SSH
 * packets). A packet that is never written (an error, a closed session) is
 * simply not released, and the garbage collector takes its buffer.
 *
 * Each packet starts 3 bytes into its buffer, so that its data (after the
 * 13 bytes of header) starts 16 bytes in: a multiple of 8, as the chunk
 * buffers the data is copied from are (src/util/copy-bytes.ts copies
 * between two such offsets a word at a time, without its scratch pass).
 *
 * Bound: at most `maxFree` buffers wait here; those in use are bounded by
 * the requests sessions run at once.
 */
export class ReplyBuffers {
  static readonly dataOffset = 16;
  static readonly bufferBytes = ReplyBuffers.dataOffset + LIMITS.maxReadLength;
  readonly #free: ArrayBuffer[] = [];
  readonly #ours = new WeakSet<ArrayBuffer>();
  readonly #waiting = new WeakSet<ArrayBuffer>();
  readonly #maxFree: number;

  constructor(maxFree: number) {
    this.#maxFree = maxFree;
  }

  /** Buffers waiting to be taken again. */
  get free(): number {
    return this.#free.length;
  }

  /** A DATA packet for up to `dataBytes` bytes (fill it from DATA_HEADER_BYTES, then finishDataPacket). */
  take(dataBytes: number): Buffer {
    if (dataBytes > LIMITS.maxReadLength) return Buffer.allocUnsafe(DATA_HEADER_BYTES + dataBytes);
    let buffer = this.#free.pop();
    if (buffer !== undefined) this.#waiting.delete(buffer);
    else {
      buffer = new ArrayBuffer(ReplyBuffers.bufferBytes);
      this.#ours.add(buffer);
    }
    return Buffer.from(buffer, ReplyBuffers.dataOffset - DATA_HEADER_BYTES, DATA_HEADER_BYTES + dataBytes);
  }

  /**
   * `packet` (or a part of it) is no longer used by anyone: its buffer may be
   * taken again. MUST be called at most once per taken packet; packets not
   * taken here are ignored.
   */
  release(packet: Uint8Array): void {
    const buffer = packet.buffer;
    if (!(buffer instanceof ArrayBuffer) || !this.#ours.has(buffer) || this.#waiting.has(buffer)) return;
    if (this.#free.length >= this.#maxFree) return;
    this.#waiting.add(buffer);
    this.#free.push(buffer);
  }
}

/** The gateway's pool: at most 32 free buffers (8 MiB) wait between downloads. */
export const replyBuffers = new ReplyBuffers(32);
