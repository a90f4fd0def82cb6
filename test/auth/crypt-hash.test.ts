import { afterAll, describe, expect, it } from 'vitest';
import { CryptVerifier, MAX_BCRYPT_COST, cryptFormatName, parseCryptHash } from '../../src/auth/crypt-hash.js';

// Vectors from implementations other than the ones capstan uses: OpenBSD's and
// crypt_blowfish's bcrypt test vectors, Drepper's sha-crypt specification,
// OpenSSL's `openssl passwd -1/-5/-6` and glibc's crypt(3) (through Python).
const VECTORS: [string, string][] = [
  ['U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
  ['U*U*', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK'],
  ['U*U', '$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
  ['U*U', '$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
  ['Hello world!', '$1$saltsalt$le8lFSqqnPaRFOlmAZpvH1'],
  ['Hello world!', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
  ['Hello world!', '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'],
  [
    'Hello world!',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
  ],
  ['pässwörd€', '$6$roundsalt$kgSAui/kdi3Pzi04VlVShvtea5w7mfudGu0mU9tspF.zAz2StBawjjhDfULn8v.xmgqucIPVYXIWmGHUyVTbf1'],
  ['pässwörd€', '$1$abcdefgh$yf.SYBPl.sbEdP0oHetO21'],
];

describe('crypt hashes', () => {
  const verifier = new CryptVerifier();
  afterAll(() => verifier.close());

  it.each(VECTORS)('verifies %s against %s', async (password, text) => {
    const parsed = parseCryptHash(text);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(await verifier.verify(password, parsed.hash)).toBe(true);
    expect(await verifier.verify(`${password}x`, parsed.hash)).toBe(false);
    expect(await verifier.verify('', parsed.hash)).toBe(false);
  });

  it('names each accepted format', () => {
    expect(VECTORS.map(([, text]) => (parseCryptHash(text) as { hash: { format: string } }).hash.format)).toEqual([
      'bcrypt',
      'bcrypt',
      'bcrypt',
      'bcrypt',
      'md5-crypt',
      'sha256-crypt',
      'sha512-crypt',
      'sha512-crypt',
      'sha512-crypt',
      'md5-crypt',
    ]);
  });

  it('refuses plaintext and unknown formats, naming the format and never the text', () => {
    const cases: [string, string][] = [
      ['hunter2', 'not a crypt(3) hash (plaintext?)'],
      ['$apr1$abc$0123456789012345678901', '$apr1$'],
      ['$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7', '$y$'],
      ['$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', '$argon2id$'],
      ['$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA', '$scrypt$'],
      ['$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', '$2b$'],
      ['$6$rounds=999999999$salt$' + 'a'.repeat(86), '$6$'],
      ['$6$salt$tooshort', '$6$'],
      ['$2b$05$short', '$2b$'],
      ['', 'empty'],
    ];
    for (const [text, format] of cases) {
      const parsed = parseCryptHash(text);
      expect(parsed.ok, text).toBe(false);
      if (parsed.ok) continue;
      expect(parsed.format).toBe(format);
      if (text.length > 8) {
        expect(parsed.reason).not.toContain(text);
        expect(parsed.format).not.toContain(text.slice(6));
      }
    }
    expect(parseCryptHash(undefined).ok).toBe(false);
    expect(parseCryptHash(42).ok).toBe(false);
  });

  it('bounds the work a hash may ask for', () => {
    const cost = (n: number): string => `$2b$${String(n).padStart(2, '0')}$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW`;
    expect(parseCryptHash(cost(MAX_BCRYPT_COST)).ok).toBe(true);
    expect(parseCryptHash(cost(MAX_BCRYPT_COST + 1)).ok).toBe(false);
    expect(parseCryptHash(`$6$rounds=1000000$salt$${'a'.repeat(86)}`).ok).toBe(true);
    expect(parseCryptHash(`$6$rounds=1000001$salt$${'a'.repeat(86)}`).ok).toBe(false);
    expect(cryptFormatName('$'.repeat(3))).toBe('malformed $-prefixed text');
  });

  it('refuses over-long passwords without hashing them', async () => {
    const parsed = parseCryptHash(VECTORS[6]![1]);
    if (!parsed.ok) throw new Error('vector');
    expect(await verifier.verify('x'.repeat(2000), parsed.hash)).toBe(false);
  });
});
