import { LIMITS, PACKET } from './constants.js';
import { packetBuffers } from './packet-buffers.js';
import { MalformedPacketError } from './wire.js';

export interface Frame {
  type: number;
  /** The bytes after the type byte; a view into what arrived when the packet came in one piece. */
  payload: Buffer;
}

/**
 * Cuts an SFTP byte stream into packets (`uint32 length ‖ type ‖ payload`).
 * Holds at most one partial packet: its length is checked against
 * LIMITS.maxPacketLength (OpenSSH's SFTP_MAX_MSG_LENGTH) as soon as the four
 * length bytes are in, before anything is buffered for it, so a hostile
 * length costs nothing. A packet that arrived in one piece is passed on as a
 * view, one that spans pieces is copied once: a large WRITE (an SFTP WRITE
 * of 255 KiB comes in eight SSH packets) into a buffer of the gateway's
 * pool, with its data 8-aligned, which its handler gives back
 * (packet-buffers.ts); any other packet into a buffer of its own.
 */
export class PacketFramer {
  #chunks: Buffer[] = [];
  #buffered = 0;

  /** Adds bytes; returns the packets they completed, in order. Throws MalformedPacketError on a bad length. */
  push(data: Buffer): Frame[] {
    this.#chunks.push(data);
    this.#buffered += data.length;
    const frames: Frame[] = [];
    while (this.#buffered >= 4) {
      const length = this.#peekLength();
      if (length === 0) throw new MalformedPacketError('empty packet');
      if (length > LIMITS.maxPacketLength) throw new MalformedPacketError('packet longer than 256 KiB');
      if (this.#buffered < 4 + length) break;
      this.#take(4);
      const packet = this.#take(length, this.#writeDataAt(length));
      frames.push({ type: packet.readUInt8(0), payload: packet.subarray(1) });
    }
    return frames;
  }

  /** Bytes held of a packet not complete yet. */
  get buffered(): number {
    return this.#buffered;
  }

  #peekLength(): number {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= 4) return first.readUInt32BE(0);
    const head = Buffer.concat(this.#chunks, 4);
    return head.readUInt32BE(0);
  }

  /**
   * For a whole packet of `length` bytes at the front that is a large WRITE
   * spanning pieces: where its data starts in it (type, id, handle, offset,
   * data length come first). Undefined for every other packet, and for one
   * whose fields do not fit (decodeRequest refuses it later).
   */
  #writeDataAt(length: number): number | undefined {
    const first = this.#chunks[0];
    if (length < POOLED_WRITE_BYTES || first === undefined || first.length >= length) return undefined;
    // type(1) ‖ id(4) ‖ handle length(4): 9 bytes, often all in the first piece.
    const head = first.length >= 9 ? first : Buffer.concat(this.#chunks, 9);
    if (head[0] !== PACKET.WRITE) return undefined;
    const dataAt = 9 + head.readUInt32BE(5) + 8 + 4;
    return dataAt < length ? dataAt : undefined;
  }

  /** The next `n` bytes: a view when one piece holds them, else a copy (pooled when `alignAt` is given). */
  #take(n: number, alignAt?: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = alignAt === undefined ? Buffer.allocUnsafe(n) : packetBuffers.take(n, alignAt);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0];
      if (chunk === undefined) throw new Error('PacketFramer: fewer bytes than counted');
      const part = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, part);
      at += part;
      if (part === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}

/** WRITEs at least this long that span pieces are assembled in the pool (smaller ones cost little fresh). */
const POOLED_WRITE_BYTES = 64 * 1024;
