import { LIMITS } from './constants.js';

/**
 * The buffers large packets are assembled in, reused once nothing needs
 * their bytes any more, one pool for the whole gateway: DATA replies (up to
 * 255 KiB each) and WRITE requests that arrived in several SSH packets (the
 * framer puts them back together).
 *
 * A fresh buffer per packet is a fresh allocation of 255 KiB every 0.8 ms at
 * 300 MB/s: its first touch faults its pages in, and the external memory it
 * adds makes V8 collect sooner. Measured on Node 20 (2-core EPYC), 1 GiB of
 * 255 KiB copies: 214–248 ms of CPU into fresh buffers, 22 ms into one
 * reused buffer.
 *
 * Who gives a buffer back, and when nothing uses it any more:
 * - a DATA reply: SftpTransport, from the packet's write callback (ssh2 has
 *   copied the bytes into its own SSH packets; SftpByteStream's contract);
 * - a WRITE request: its handler, once the upload took the data (FileWriter
 *   and the spool copy what they are given before they resolve).
 * A packet that is not given back (an error, a closed session, a request
 * refused) is left to the garbage collector.
 *
 * Alignment: take() places the packet so that one chosen byte of it (the
 * first data byte of a DATA reply or a WRITE) lies at a multiple of 8 in its
 * buffer, as the chunk buffers that data is copied to and from do
 * (src/util/copy-bytes.ts then copies a word at a time, without its scratch
 * pass).
 *
 * Bound: at most `maxFree` buffers wait here; those in use are bounded by
 * the requests sessions hold.
 */
export class PacketBuffers {
  /** The largest packet (a WRITE of 256 KiB less its length field) with room to align any byte of it. */
  static readonly bufferBytes = LIMITS.maxPacketLength + 8;
  readonly #free: ArrayBuffer[] = [];
  readonly #ours = new WeakSet<ArrayBuffer>();
  readonly #maxFree: number;

  constructor(maxFree: number) {
    this.#maxFree = maxFree;
  }

  /** Buffers waiting to be taken again. */
  get free(): number {
    return this.#free.length;
  }

  /** `length` bytes whose byte `alignAt` lies at a multiple of 8 in its buffer (a plain buffer past the largest packet). */
  take(length: number, alignAt = 0): Buffer {
    if (length > LIMITS.maxPacketLength) return Buffer.allocUnsafe(length);
    let buffer = this.#free.pop();
    if (buffer === undefined) {
      buffer = new ArrayBuffer(PacketBuffers.bufferBytes);
      this.#ours.add(buffer);
    }
    return Buffer.from(buffer, (8 - (alignAt % 8)) % 8, length);
  }

  /**
   * `packet` (or a part of it) is no longer used by anyone: its buffer may be
   * taken again. MUST be called at most once per taken packet; views of
   * buffers not taken here are ignored.
   */
  release(packet: Uint8Array): void {
    const buffer = packet.buffer;
    if (!(buffer instanceof ArrayBuffer) || !this.#ours.has(buffer)) return;
    // At most maxFree (32) entries to look through, and only for the pool's own buffers.
    if (this.#free.length >= this.#maxFree || this.#free.includes(buffer)) return;
    this.#free.push(buffer);
  }
}

/** The gateway's pool: at most 32 free buffers (8 MiB) wait between transfers. */
export const packetBuffers = new PacketBuffers(32);
