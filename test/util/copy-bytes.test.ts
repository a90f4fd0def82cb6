import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { copyBytes } from '../../src/util/copy-bytes.js';

/** A view of `n` bytes at `offset` of its own buffer, shared memory or not, filled with `fill`. */
function view(n: number, offset: number, shared: boolean, fill: number): Uint8Array {
  const memory = shared ? new SharedArrayBuffer(offset + n + 16) : new ArrayBuffer(offset + n + 16);
  return new Uint8Array(memory, offset, n).fill(fill);
}

describe('copyBytes (src/util/copy-bytes.ts)', () => {
  it('copies exactly what target.set would, for every mix of shared and ordinary memory and alignment', () => {
    for (const size of [0, 1, 255, 256, 4099, 64 * 1024 + 13, 200 * 1024 + 3]) {
      const data = new Uint8Array(randomBytes(size));
      for (const [fromShared, intoShared] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        for (const sourceOffset of [0, 3, 8]) {
          for (const targetOffset of [0, 5, 13]) {
            for (const at of [0, 7]) {
              const source = view(size, sourceOffset, fromShared, 0);
              source.set(data);
              const target = view(size + at + 9, targetOffset, intoShared, 0xee);
              copyBytes(target, source, at);
              expect(Buffer.from(target.subarray(at, at + size)).equals(Buffer.from(data))).toBe(true);
              // Nothing before or after the copied range changed, in the view or in its buffer around it.
              expect(target.subarray(0, at).every((b) => b === 0xee)).toBe(true);
              expect(target.subarray(at + size).every((b) => b === 0xee)).toBe(true);
              expect(new Uint8Array(target.buffer, 0, targetOffset).every((b) => b === 0)).toBe(true);
            }
          }
        }
      }
    }
  });

  it('refuses a source that does not fit, as target.set does, and writes nothing', () => {
    const target = view(1000, 5, true, 0xee);
    expect(() => copyBytes(target, view(600, 0, false, 1), 500)).toThrow(RangeError);
    expect(target.every((b) => b === 0xee)).toBe(true);
    expect(() => copyBytes(view(1000, 5, false, 0), view(600, 0, true, 1), 401)).toThrow(RangeError);
  });
});
