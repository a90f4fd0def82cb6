import { LIMITS } from './constants.js';
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
 * view, one that spans pieces is copied once.
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
      const packet = this.#take(length);
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

  #take(n: number): Buffer {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
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
