import { randomBytes } from 'node:crypto';
import { base32 } from 'multiformats/bases/base32';
import { describe, expect, it } from 'vitest';
import { encodeBase32 } from '../../src/util/base32.js';

describe('encodeBase32', () => {
  it('spells what multiformats spells, at every length a cap or an address has and around it', () => {
    for (let length = 0; length <= 80; length++) {
      for (let i = 0; i < 8; i++) {
        const bytes = randomBytes(length);
        expect(encodeBase32(bytes)).toBe(base32.baseEncode(bytes));
      }
    }
  });

  it('matches RFC 4648 test vectors (lowercase, no padding)', () => {
    const ascii = (s: string) => new TextEncoder().encode(s);
    expect(encodeBase32(ascii(''))).toBe('');
    expect(encodeBase32(ascii('f'))).toBe('my');
    expect(encodeBase32(ascii('fo'))).toBe('mzxq');
    expect(encodeBase32(ascii('foo'))).toBe('mzxw6');
    expect(encodeBase32(ascii('foob'))).toBe('mzxw6yq');
    expect(encodeBase32(ascii('fooba'))).toBe('mzxw6ytb');
    expect(encodeBase32(ascii('foobar'))).toBe('mzxw6ytboi');
  });

  it('reads a view, not the buffer under it', () => {
    const whole = randomBytes(64);
    const view = whole.subarray(7, 43);
    expect(encodeBase32(view)).toBe(base32.baseEncode(new Uint8Array(view)));
  });
});
