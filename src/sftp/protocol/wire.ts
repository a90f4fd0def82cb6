import { ATTR_FLAGS } from './constants.js';

/**
 * The field encodings of SFTP packets (RFC 4251 section 5 types: uint32,
 * uint64, string) and the ATTRS structure, read from and written to Buffers.
 */

/** A packet whose fields do not parse: too short, or a length running past its end. */
export class MalformedPacketError extends Error {
  constructor(what: string) {
    super(`malformed SFTP packet: ${what}`);
    this.name = 'MalformedPacketError';
  }
}

/** SFTP attributes; a field is present when its flag was set (or, when writing, when it is defined). */
export interface WireAttrs {
  size?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  mode?: number | undefined;
  atime?: number | undefined;
  mtime?: number | undefined;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads fields from one packet's payload, front to back. Every read checks
 * the bytes remaining first, so a hostile length never makes us allocate or
 * read past the packet.
 */
export class WireReader {
  #at: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
  ) {
    this.#at = start;
  }

  get remaining(): number {
    return this.buf.length - this.#at;
  }

  #need(n: number, what: string): void {
    if (this.buf.length - this.#at < n) throw new MalformedPacketError(`${what} runs past the end`);
  }

  u8(): number {
    this.#need(1, 'byte');
    const v = this.buf.readUInt8(this.#at);
    this.#at += 1;
    return v;
  }

  u32(): number {
    this.#need(4, 'uint32');
    const v = this.buf.readUInt32BE(this.#at);
    this.#at += 4;
    return v;
  }

  /**
   * A uint64 as a number. Offsets and sizes above 2^53 - 1 cannot address
   * anything a capstan file holds; they are clamped to MAX_SAFE_INTEGER,
   * which every caller treats as "past the end".
   */
  u64(): number {
    this.#need(8, 'uint64');
    const v = this.buf.readBigUInt64BE(this.#at);
    this.#at += 8;
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  /** A uint64 exactly, for the few requests whose answer depends on values past 2^53 (copy-data). */
  u64Exact(): bigint {
    this.#need(8, 'uint64');
    const v = this.buf.readBigUInt64BE(this.#at);
    this.#at += 8;
    return v;
  }

  /** A string's bytes, as a view into the packet (no copy). */
  bytes(): Buffer {
    const len = this.u32();
    this.#need(len, 'string');
    const out = this.buf.subarray(this.#at, this.#at + len);
    this.#at += len;
    return out;
  }

  /** A string that should be UTF-8 (a path); null when its bytes are not valid UTF-8. */
  text(): string | null {
    const raw = this.bytes();
    try {
      return strictUtf8.decode(raw);
    } catch {
      return null;
    }
  }

  /** Everything not read yet (an extended request's own fields), as a view. */
  rest(): Buffer {
    const out = this.buf.subarray(this.#at);
    this.#at = this.buf.length;
    return out;
  }

  attrs(): WireAttrs {
    const flags = this.u32();
    const attrs: WireAttrs = {};
    if (flags & ATTR_FLAGS.SIZE) attrs.size = this.u64();
    if (flags & ATTR_FLAGS.UIDGID) {
      attrs.uid = this.u32();
      attrs.gid = this.u32();
    }
    if (flags & ATTR_FLAGS.PERMISSIONS) attrs.mode = this.u32();
    if (flags & ATTR_FLAGS.ACMODTIME) {
      attrs.atime = this.u32();
      attrs.mtime = this.u32();
    }
    if (flags & ATTR_FLAGS.EXTENDED) {
      // Extended attribute pairs: read past them; capstan keeps none.
      const count = this.u32();
      for (let i = 0; i < count; i++) {
        this.bytes();
        this.bytes();
      }
    }
    return attrs;
  }

  /** Throws unless every byte was read (a request with trailing bytes is malformed). */
  end(): void {
    if (this.#at !== this.buf.length) throw new MalformedPacketError('trailing bytes');
  }
}

/**
 * Builds one packet: `uint32 length ‖ byte type ‖ fields`, in a single
 * buffer sized up front (one allocation, one channel write).
 */
export class PacketBuilder {
  readonly #parts: Buffer[] = [];
  #length = 1;

  constructor(private readonly type: number) {}

  u32(n: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n >>> 0, 0);
    return this.#push(b);
  }

  u64(n: number | bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(n), 0);
    return this.#push(b);
  }

  string(value: string | Uint8Array): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.u32(bytes.length);
    return this.#push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  raw(bytes: Uint8Array): this {
    return this.#push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  attrs(a: WireAttrs): this {
    let flags = 0;
    if (a.size !== undefined) flags |= ATTR_FLAGS.SIZE;
    if (a.uid !== undefined && a.gid !== undefined) flags |= ATTR_FLAGS.UIDGID;
    if (a.mode !== undefined) flags |= ATTR_FLAGS.PERMISSIONS;
    if (a.atime !== undefined && a.mtime !== undefined) flags |= ATTR_FLAGS.ACMODTIME;
    this.u32(flags);
    if (a.size !== undefined) this.u64(a.size);
    if (a.uid !== undefined && a.gid !== undefined) this.u32(a.uid).u32(a.gid);
    if (a.mode !== undefined) this.u32(a.mode);
    if (a.atime !== undefined && a.mtime !== undefined) this.u32(a.atime).u32(a.mtime);
    return this;
  }

  #push(b: Buffer): this {
    this.#parts.push(b);
    this.#length += b.length;
    return this;
  }

  build(): Buffer {
    const out = Buffer.allocUnsafe(4 + this.#length);
    out.writeUInt32BE(this.#length, 0);
    out.writeUInt8(this.type, 4);
    let at = 5;
    for (const part of this.#parts) {
      part.copy(out, at);
      at += part.length;
    }
    return out;
  }
}
