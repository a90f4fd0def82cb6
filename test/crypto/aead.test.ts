import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { describe, expect, it } from 'vitest';
import { AeadError, openConvergent, openConvergentInPlace, openRandomized, sealConvergent, sealRandomized } from '../../src/crypto/aead.js';

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

  it('leaves the headroom asked for before the nonce, and seals the same bytes after it', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const plaintext = randomBytes(100);
    const plain = sealRandomized(key, nonce, plaintext, nonce);
    for (const headroom of [1, 3]) {
      const roomy = sealRandomized(key, nonce, plaintext, nonce, headroom);
      expect(roomy.length).toBe(headroom + plain.length);
      expect(roomy.subarray(0, headroom).every((b) => b === 0)).toBe(true);
      expect(Buffer.from(roomy.subarray(headroom)).equals(plain)).toBe(true);
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

/**
 * openConvergentInPlace decrypts in 64 KiB pieces into the sealed buffer
 * itself (the reader's chunks): the same plaintext as openConvergent on every
 * size around a piece boundary, a view of the caller's buffer, and every
 * tampering one AeadError.
 */
describe('AES-256-GCM opened in place', () => {
  const PIECE = 64 * 1024;

  it('gives what openConvergent gives, in the sealed buffer itself', () => {
    const key = randomBytes(32);
    for (const size of [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 17, 1024 * 1024]) {
      const plain = randomBytes(size);
      const sealed = sealConvergent(key, plain);
      expect(Buffer.from(openConvergent(key, sealed)).equals(plain)).toBe(true);
      const copy = new Uint8Array(sealed);
      const opened = openConvergentInPlace(key, copy);
      expect(opened.buffer).toBe(copy.buffer);
      expect(opened.byteOffset).toBe(copy.byteOffset);
      expect(Buffer.from(opened).equals(plain)).toBe(true);
    }
  });

  it('honours aad and refuses a flipped bit, another aad, another key and a short blob with AeadError', () => {
    const key = randomBytes(32);
    const aad = randomBytes(20);
    const plain = randomBytes(2 * PIECE + 5);
    const sealed = sealConvergent(key, plain, aad);
    expect(Buffer.from(openConvergentInPlace(key, new Uint8Array(sealed), aad)).equals(plain)).toBe(true);
    for (const at of [0, PIECE - 1, PIECE, 2 * PIECE + 4, sealed.length - 16, sealed.length - 1]) {
      const bad = new Uint8Array(sealed);
      bad[at]! ^= 0x01;
      expect(() => openConvergentInPlace(key, bad, aad)).toThrow(AeadError);
    }
    expect(() => openConvergentInPlace(key, new Uint8Array(sealed), randomBytes(20))).toThrow(AeadError);
    expect(() => openConvergentInPlace(key, new Uint8Array(sealed))).toThrow(AeadError);
    expect(() => openConvergentInPlace(randomBytes(32), new Uint8Array(sealed), aad)).toThrow(AeadError);
    expect(() => openConvergentInPlace(key, new Uint8Array(15))).toThrow(AeadError);
  });
});
