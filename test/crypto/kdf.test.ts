import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { netstring, taggedHash, taggedHmac } from '../../src/crypto/kdf.js';
import { TAG } from '../../src/crypto/tags.js';

/**
 * taggedHash and taggedHmac feed their netstrings to the hash piece by piece
 * (src/crypto/kdf.ts); the definition is the hash of their concatenation.
 * Same digests for every tag, no parts, empty parts and parts whose length
 * has several digits, the tag's cached prefix included (each tag twice).
 */
describe('tagged hashes', () => {
  const concatenated = (tag: string, parts: Uint8Array[]): Buffer =>
    Buffer.concat([netstring(new TextEncoder().encode(tag)), ...parts.map((p) => netstring(p))]);

  it('equal the hash of the concatenated netstrings', () => {
    const shapes = [[], [0], [32], [32, 16], [1, 0, 9, 10, 99, 100, 1000]];
    for (const tag of [...Object.values(TAG), ...Object.values(TAG)]) {
      for (const shape of shapes) {
        const parts = shape.map((n) => new Uint8Array(randomBytes(n)));
        const key = randomBytes(32);
        const whole = concatenated(tag, parts);
        expect(Buffer.from(taggedHash(tag, ...parts))).toEqual(createHash('sha256').update(whole).digest());
        expect(Buffer.from(taggedHmac(key, tag, ...parts))).toEqual(createHmac('sha256', key).update(whole).digest());
      }
    }
  });
});
