import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../src/tree/dir/bytes.js';

describe('ByteWriter.utf8WithLength', () => {
  it('writes the UTF-8 length as a u16 and then the bytes, growing the buffer as needed', () => {
    for (const text of ['', 'URI:LIT:abc', 'é', '名前.txt', '🙂'.repeat(100), 'x'.repeat(70_000 / 3)]) {
      const w = new ByteWriter(4).u8(7).utf8WithLength(text).u8(9);
      const bytes = Buffer.from(text, 'utf8');
      const r = new ByteReader(w.finish());
      expect(r.u8()).toBe(7);
      expect(r.u16()).toBe(bytes.length);
      expect(Buffer.from(r.bytes(bytes.length)).equals(bytes)).toBe(true);
      expect(r.u8()).toBe(9);
      expect(r.remaining).toBe(0);
    }
  });

  it('refuses text over 65,535 bytes of UTF-8', () => {
    expect(() => new ByteWriter().utf8WithLength('é'.repeat(32_768))).toThrow(RangeError);
    expect(new ByteWriter().utf8WithLength('é'.repeat(32_767)).length).toBe(2 + 65_534);
  });
});
