import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_NAME_BYTES, checkName } from '../../src/tree/index.js';

const rejects = (name: unknown) => expect(() => checkName(name as string)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));

describe('checkName', () => {
  it('returns every name exactly as given: no normalization', () => {
    expect(checkName('e\u0301')).toBe('e\u0301');
    expect(checkName('\u00e9')).toBe('\u00e9');
    expect(checkName('A\u030a')).toBe('A\u030a');
    expect(checkName('\uFFFD')).toBe('\uFFFD'); // a real U+FFFD is valid UTF-8 (EF BF BD)
    expect(checkName('plain.txt')).toBe('plain.txt');
    expect(checkName('with space and \u{1F600}')).toBe('with space and \u{1F600}');
  });

  it("rejects '', '.', '..', '/', NUL, lone surrogates and non-strings", () => {
    for (const bad of ['', '.', '..', '/', 'a/b', '/a', 'a/', 'a\0', '\0', '\uD800', 'a\uDC00b', undefined, null, 42]) rejects(bad);
  });

  it('accepts names that merely look special', () => {
    for (const ok of ['...', '. ', ' .', '.hidden', '..x', '\\', ':', 'a\\b', '*?<>|']) expect(checkName(ok)).toBe(ok);
  });

  it(`bounds the UTF-8 length at ${MAX_NAME_BYTES} bytes, as given`, () => {
    expect(checkName('x'.repeat(255))).toHaveLength(255);
    rejects('x'.repeat(256));
    expect(checkName('\u00e9'.repeat(127))).toHaveLength(127); // 254 bytes
    rejects('\u00e9'.repeat(128)); // 256 bytes
    expect(checkName('\u{1F600}'.repeat(63))).toBeTruthy(); // 252 bytes
    rejects('\u{1F600}'.repeat(64)); // 256 bytes
    // Judged on the bytes given: 255 bytes of NFD is fine, 256 is not, whatever NFC would make of it.
    const nfd = 'e\u0301'.repeat(85); // 255 bytes NFD, 170 NFC
    expect(Buffer.byteLength(checkName(nfd))).toBe(255);
    rejects(`x${nfd}`);
  });

  it('returns any acceptable name unchanged (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), (s) => {
        let n: string;
        try {
          n = checkName(s);
        } catch (err) {
          expect((err as Error).name).toBe('InvalidInputError');
          return;
        }
        expect(n).toBe(s);
      }),
    );
  });
});
