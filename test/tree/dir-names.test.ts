import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_NAME_BYTES, normalizeName } from '../../src/tree/index.js';

const rejects = (name: unknown) =>
  expect(() => normalizeName(name as string)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));

describe('normalizeName', () => {
  it('returns NFC', () => {
    expect(normalizeName('e\u0301')).toBe('\u00e9');
    expect(normalizeName('\u00e9')).toBe('\u00e9');
    expect(normalizeName('A\u030a')).toBe('\u00c5');
    expect(normalizeName('plain.txt')).toBe('plain.txt');
    expect(normalizeName('with space and \u{1F600}')).toBe('with space and \u{1F600}');
  });

  it("rejects '', '.', '..', '/', NUL, U+FFFD, lone surrogates and non-strings", () => {
    for (const bad of ['', '.', '..', '/', 'a/b', '/a', 'a/', 'a\0', '\0', '\uFFFD', 'x\uFFFDy', '\uD800', 'a\uDC00b', undefined, null, 42])
      rejects(bad);
  });

  it('accepts names that merely look special', () => {
    for (const ok of ['...', '. ', ' .', '.hidden', '..x', '\\', ':', 'a\\b', '*?<>|']) expect(normalizeName(ok)).toBe(ok);
  });

  it(`bounds the UTF-8 length (after NFC) at ${MAX_NAME_BYTES} bytes`, () => {
    expect(normalizeName('x'.repeat(255))).toHaveLength(255);
    rejects('x'.repeat(256));
    expect(normalizeName('\u00e9'.repeat(127))).toHaveLength(127); // 254 bytes
    rejects('\u00e9'.repeat(128)); // 256 bytes
    expect(normalizeName('\u{1F600}'.repeat(63))).toBeTruthy(); // 252 bytes
    rejects('\u{1F600}'.repeat(64)); // 256 bytes
    // 255 NFD bytes can become fewer NFC bytes: judged after normalizing.
    const nfd = 'e\u0301'.repeat(85); // 255 bytes NFD, 170 NFC
    expect(Buffer.byteLength(normalizeName(nfd))).toBe(170);
  });

  it('is idempotent and agrees on every spelling of a name (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), (s) => {
        let n: string;
        try {
          n = normalizeName(s);
        } catch (err) {
          expect((err as Error).name).toBe('InvalidInputError');
          return;
        }
        expect(normalizeName(n)).toBe(n);
        expect(normalizeName(s.normalize('NFD'))).toBe(n);
        expect(n).toBe(s.normalize('NFC'));
      }),
    );
  });
});
