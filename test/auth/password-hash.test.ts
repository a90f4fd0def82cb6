import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SCRYPT_PARAMS,
  dummyPasswordHash,
  formatPasswordHash,
  hashPassword,
  parsePasswordHash,
  verifyPassword,
} from '../../src/auth/password-hash.js';

const FAST = { ln: 10, r: 8, p: 1 };

describe('password hashes', () => {
  it('hashPassword writes the documented format with the default parameters', async () => {
    const h = await hashPassword('correct horse');
    expect(h).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    const parsed = parsePasswordHash(h);
    expect(parsed.params).toEqual(DEFAULT_SCRYPT_PARAMS);
    expect(parsed.salt.length).toBe(16);
    expect(parsed.hash.length).toBe(32);
    expect(formatPasswordHash(parsed)).toBe(h);
  });

  it('round-trips, and refuses a wrong password', async () => {
    const h = await hashPassword('correct horse');
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('correct horsf', h)).toBe(false);
    expect(await verifyPassword('', h)).toBe(false);
  });

  it('salts: the same password hashes differently each time', async () => {
    const [a, b] = await Promise.all([hashPassword('pw', FAST), hashPassword('pw', FAST)]);
    expect(a).not.toBe(b);
    expect(await verifyPassword('pw', a)).toBe(true);
    expect(await verifyPassword('pw', b)).toBe(true);
  });

  it('handles non-ASCII passwords as UTF-8', async () => {
    const h = await hashPassword('pässwörd ✓', FAST);
    expect(await verifyPassword('pässwörd ✓', h)).toBe(true);
    expect(await verifyPassword('passwort ✓', h)).toBe(false);
  });

  it.each([
    ['not a hash', 'hunter2'],
    ['other scheme', '$2b$12$abcdefghijklmnopqrstuv'],
    ['padded base64', '$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['leading zero', '$scrypt$ln=010,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['ln too small', '$scrypt$ln=4,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['memory too large', '$scrypt$ln=20,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['salt too short', '$scrypt$ln=10,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['non-canonical base64', '$scrypt$ln=10,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAB$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    ['fields swapped', '$scrypt$r=8,ln=10,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
  ])('refuses a malformed hash (%s) without echoing it', async (_what, text) => {
    let error: unknown;
    try {
      parsePasswordHash(text);
    } catch (err) {
      error = err;
    }
    expect((error as Error).name).toBe('InvalidInputError');
    expect((error as Error).message).not.toContain(text);
    expect(await verifyPassword('x', text)).toBe(false);
  });

  it('a dummy hash is well formed and matches nothing', async () => {
    const dummy = dummyPasswordHash(FAST);
    expect(() => parsePasswordHash(formatPasswordHash(dummy))).not.toThrow();
    expect(await verifyPassword('', dummy)).toBe(false);
  });

  it('refuses to hash an empty or huge password', async () => {
    await expect(hashPassword('')).rejects.toMatchObject({ name: 'InvalidInputError' });
    await expect(hashPassword('x'.repeat(2000))).rejects.toMatchObject({ name: 'InvalidInputError' });
    const h = await hashPassword('x'.repeat(1024), FAST);
    expect(await verifyPassword('x'.repeat(1024), h)).toBe(true);
    expect(await verifyPassword('x'.repeat(1025), h)).toBe(false);
  });
});
