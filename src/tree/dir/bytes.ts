/**
 * Bounded binary encoding for directory nodes and slot records.
 *
 * The reader never allocates from a length it has not checked against the
 * bytes actually remaining, so a hostile node or record costs at most its own
 * size. Any fault throws FormatError, which the caller turns into an
 * IntegrityError naming the object (never the bytes or the fault's detail).
 */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}

const utf8Encoder = new TextEncoder();

/** Largest value a varint may hold: counts and sizes stay exact JS numbers. */
const MAX_VARINT = Number.MAX_SAFE_INTEGER;

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.reserve(1);
    this.buf[this.length++] = v;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
    return this;
  }

  u64(v: bigint): this {
    this.reserve(8);
    this.view.setBigUint64(this.length, v);
    this.length += 8;
    return this;
  }

  f64(v: number): this {
    this.reserve(8);
    this.view.setFloat64(this.length, v);
    this.length += 8;
    return this;
  }

  /** Unsigned LEB128, at most 2^53 - 1. */
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError('varint out of range');
    while (v >= 0x80) {
      this.u8((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    return this.u8(v);
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /**
   * `text` as UTF-8 after its length in bytes as a u16, encoded straight into
   * the buffer: an encode() per entry was a fresh array outside V8's heap
   * (one malloc) for every entry of every node written.
   */
  utf8WithLength(text: string): this {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    this.reserve(2 + 3 * text.length);
    const { written } = utf8Encoder.encodeInto(text, this.buf.subarray(this.length + 2));
    if (written > 0xffff) throw new RangeError('text over 65,535 bytes');
    this.view.setUint16(this.length, written);
    this.length += 2 + written;
    return this;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export class ByteReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(n: number): void {
    if (n > this.remaining) throw new FormatError('truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.offset);
    this.offset += 8;
    return v;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i >= 8) throw new FormatError('varint too long');
      const b = this.u8();
      value += (b & 0x7f) * scale;
      if (value > MAX_VARINT) throw new FormatError('varint too large');
      if ((b & 0x80) === 0) {
        // One value, one spelling: a trailing zero group is not canonical.
        if (b === 0 && i > 0) throw new FormatError('varint not minimal');
        return value;
      }
      scale *= 0x80;
    }
  }

  /** A view of the next `n` bytes (no copy); `n` is checked against what remains. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  end(): void {
    if (this.remaining !== 0) throw new FormatError('trailing bytes');
  }
}
