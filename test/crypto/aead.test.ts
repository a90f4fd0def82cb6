import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { describe, expect, it } from 'vitest';
import { AeadError, openRandomized, sealRandomized } from '../../src/crypto/aead.js';

/**
 * sealRandomized/openRandomized run XChaCha20-Poly1305 as HChaCha20 plus
 * node:crypto's ChaCha20-Poly1305 (src/crypto/aead.ts): byte for byte the
 * AEAD @noble/ciphers implements whole, on every size a directory node can
 * have, with and without aad; and every tampering is one AeadError.
 */
describe('XChaCha20-Poly1305 through node:crypto', () => {
  it('seals exactly what the reference implementation seals, and opens what it seals', () => {
    for (const size of [0, 1, 15, 16, 63, 64, 65, 1000, 4096, 70_000]) {
      for (const aad of [undefined, randomBytes(32)]) {
        const key = randomBytes(32);
        const nonce = randomBytes(24);
        const plaintext = randomBytes(size);
        const sealed = sealRandomized(key, nonce, plaintext, aad);
        const reference = xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
        expect(Buffer.from(sealed.subarray(24)).equals(Buffer.from(reference))).toBe(true);
        expect(Buffer.from(sealed.subarray(0, 24)).equals(nonce)).toBe(true);
        expect(Buffer.from(openRandomized(key, sealed, aad)).equals(plaintext)).toBe(true);
        const theirs = new Uint8Array([...nonce, ...reference]);
        expect(Buffer.from(openRandomized(key, theirs, aad)).equals(plaintext)).toBe(true);
      }
    }
  });

  it('refuses a flipped bit anywhere, another aad, another key and a short blob with AeadError', () => {
    const key = randomBytes(32);
    const aad = randomBytes(32);
    const sealed = sealRandomized(key, randomBytes(24), randomBytes(300), aad);
    for (let i = 0; i < sealed.length; i += 7) {
      const bad = sealed.slice();
      bad[i]! ^= 0x40;
      expect(() => openRandomized(key, bad, aad)).toThrow(AeadError);
    }
    expect(() => openRandomized(key, sealed, randomBytes(32))).toThrow(AeadError);
    expect(() => openRandomized(key, sealed)).toThrow(AeadError);
    expect(() => openRandomized(randomBytes(32), sealed, aad)).toThrow(AeadError);
    expect(() => openRandomized(key, sealed.subarray(0, 39), aad)).toThrow(AeadError);
  });
});
