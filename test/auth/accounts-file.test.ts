import ssh2 from 'ssh2';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatKeyLine, formatPasswordLine, parseAccountLine } from '../../src/auth/account-line.js';
import { parseAccountsFile } from '../../src/auth/accounts-file.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { keyFingerprint } from '../../src/auth/ssh-key.js';
import { CAP_A, CAP_B, CAP_C, makeKey, type TestKey } from './helpers.js';

let ed: TestKey, rsa: TestKey, ec256: TestKey, ec384: TestKey, ec521: TestKey, ed2: TestKey;
let hash: string;

beforeAll(async () => {
  [ed, rsa, ec256, ec384, ec521, ed2] = [
    makeKey('ed25519'),
    makeKey('rsa'),
    makeKey('ecdsa256'),
    makeKey('ecdsa384'),
    makeKey('ecdsa521'),
    makeKey('ed25519'),
  ];
  hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
});

describe('parseAccountsFile: accepted forms', () => {
  it('reads every key type, a password hash, comments, blank lines and CRLF', () => {
    const text = [
      '# capstan accounts',
      '',
      `alice ${ed.type} ${ed.base64} alice@laptop ${CAP_A}`,
      `alice ${rsa.type} ${rsa.base64} ${CAP_A}`,
      `   alice ${ec256.type} ${ec256.base64} several comment words here ${CAP_A}   `,
      `bob@example.com ${ec384.type} ${ec384.base64} ${CAP_B}`,
      `bob@example.com ${hash} ${CAP_B}`,
      `carol.x_y+z-1 ${ec521.type} ${ec521.base64} ${CAP_C}\r`,
      '   # indented comment',
      `dave ${hash} ${CAP_C}`,
    ].join('\n');
    const { accounts, errors } = parseAccountsFile(text);
    expect(errors).toEqual([]);
    expect([...accounts.keys()]).toEqual(['alice', 'bob@example.com', 'carol.x_y+z-1', 'dave']);
    const alice = accounts.get('alice')!;
    expect(alice.rootCap).toBe(CAP_A);
    expect(alice.keys.map((k) => k.type)).toEqual(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256']);
    expect(alice.passwordHash).toBeUndefined();
    expect(keyFingerprint(alice.keys[0]!)).toBe(keyFingerprint(ed.public));
    expect(accounts.get('bob@example.com')).toMatchObject({ rootCap: CAP_B, passwordHash: hash });
    expect(accounts.get('carol.x_y+z-1')!.keys[0]!.type).toBe('ecdsa-sha2-nistp521');
    expect(accounts.get('dave')).toMatchObject({ rootCap: CAP_C, passwordHash: hash, keys: [] });
  });

  it('a repeated key for the same user is one key', () => {
    const line = `alice ${ed.type} ${ed.base64} ${CAP_A}`;
    const { accounts, errors } = parseAccountsFile(`${line}\n${line}\n`);
    expect(errors).toEqual([]);
    expect(accounts.get('alice')!.keys).toHaveLength(1);
  });

  it('uses an injected cap validator', () => {
    const text = `alice ${hash} tahoe-style-URI:DIR2:abc`;
    expect(parseAccountsFile(text).errors).toHaveLength(1);
    const { accounts, errors } = parseAccountsFile(text, { validateCap: (s) => s.startsWith('tahoe-style-URI:') });
    expect(errors).toEqual([]);
    expect(accounts.get('alice')!.rootCap).toBe('tahoe-style-URI:DIR2:abc');
  });
});

describe('parseAccountsFile: refused lines', () => {
  const secret = 'hunter2-very-secret';
  const cases: [string, () => string, RegExp][] = [
    ['plaintext password', () => `eve ${secret} ${CAP_A}`, /plaintext password/],
    ['unsupported hash scheme', () => `eve $2b$12$${secret} ${CAP_A}`, /only \$scrypt\$/],
    ['malformed scrypt hash', () => `eve $scrypt$ln=15$${secret} ${CAP_A}`, /malformed/],
    ['bad user name', () => `ev/e ${hash} ${CAP_A}`, /invalid user name/],
    ['user name too long', () => `${'u'.repeat(65)} ${hash} ${CAP_A}`, /invalid user name/],
    ['missing root cap', () => `eve ${hash}`, /expected USER/],
    ['invalid root cap', () => `eve ${hash} URI:DIR2:${secret}`, /invalid root capability/],
    ['key line without cap', () => `eve ${ed.type} ${ed.base64} comment`, /invalid root capability/],
    ['key line too short', () => `eve ${ed.type} ${CAP_A}`, /a key line is/],
    ['garbage key data', () => `eve ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeadbeef ${CAP_A}`, /malformed public key/],
    ['key type mismatch', () => `eve ssh-rsa ${ed.base64} ${CAP_A}`, /malformed public key|does not match/],
    ['non-base64 key', () => `eve ssh-ed25519 @@@@ ${CAP_A}`, /not base64/],
    ['DSA key', () => `eve ssh-dss AAAAB3NzaC1kc3M ${CAP_A}`, /ssh-dss is not supported/],
    ['FIDO key', () => `eve sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t ${CAP_A}`, /not supported/],
    ['certificate', () => `eve ssh-ed25519-cert-v01@openssh.com AAAA ${CAP_A}`, /not supported/],
    ['unknown key type', () => `eve ssh-foo ${ed.base64} x ${CAP_A}`, /unknown key type/],
    // Where authorized_keys options would stand, capstan reads its own OPTIONS word.
    ['authorized_keys options', () => `eve restrict ${ed.type} ${ed.base64} ${CAP_A}`, /unknown account option/],
    [
      'unknown option hiding a secret',
      () => `eve ${secret} ${hash} ${CAP_A}`,
      /unknown account option \(known: append-only, no-snapshots\)/,
    ],
    ['overlong line', () => `eve ${ed.type} ${ed.base64} ${'c'.repeat(17000)} ${CAP_A}`, /longer than/],
  ];

  it.each(cases)('%s: error with the line number, content not echoed, rest loads', (_what, makeLine, message) => {
    const bad = makeLine();
    const text = ['# header', `alice ${ed.type} ${ed.base64} ${CAP_A}`, '', bad, `bob ${hash} ${CAP_B}`].join('\n');
    const { accounts, errors } = parseAccountsFile(text);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.line).toBe(4);
    expect(errors[0]!.message).toMatch(message);
    expect(errors[0]!.message).not.toContain(secret);
    expect(errors[0]!.message).not.toContain(CAP_A);
    expect([...accounts.keys()].sort()).toEqual(['alice', 'bob']);
  });

  it('a different root cap for an existing user is refused, naming the line; the first line wins', () => {
    const text = [`alice ${ed.type} ${ed.base64} ${CAP_A}`, `bob ${hash} ${CAP_B}`, `alice ${rsa.type} ${rsa.base64} ${CAP_C}`].join('\n');
    const { accounts, errors, faultyUsers } = parseAccountsFile(text);
    expect(errors).toEqual([{ line: 3, message: expect.stringMatching(/different root capability than line 1/) }]);
    expect(accounts.get('alice')).toMatchObject({ rootCap: CAP_A });
    expect(accounts.get('alice')!.keys).toHaveLength(1);
    expect([...faultyUsers]).toEqual(['alice']);
  });

  it('an RSA key shorter than 2048 bits is refused', () => {
    const weak = ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 }).public.split(' ');
    const { errors } = parseAccountsFile(`eve ${weak[0]} ${weak[1]} ${CAP_A}`);
    expect(errors).toEqual([{ line: 1, message: expect.stringMatching(/shorter than 2048/) }]);
  });

  it('a second password line for a user is refused', () => {
    const text = [`alice ${hash} ${CAP_A}`, `alice ${hash} ${CAP_A}`].join('\n');
    const { errors } = parseAccountsFile(text);
    expect(errors).toEqual([{ line: 2, message: expect.stringMatching(/second password line/) }]);
  });

  it('reports every bad line of a file, each with its own number', () => {
    const text = ['junk', `alice ${ed.type} ${ed.base64} ${CAP_A}`, 'bob pw CS1:DIR:x', '#ok', 'x y'].join('\n');
    const { accounts, errors } = parseAccountsFile(text);
    expect(errors.map((e) => e.line)).toEqual([1, 3, 5]);
    expect([...accounts.keys()]).toEqual(['alice']);
  });
});

describe('line formatting', () => {
  it('formatKeyLine and formatPasswordLine produce lines that parse back', () => {
    const keyLine = formatKeyLine('alice', ed.publicLine, CAP_A);
    expect(keyLine).toBe(`alice ${ed.type} ${ed.base64} test@host ${CAP_A}`);
    const parsed = parseAccountLine(keyLine);
    expect(parsed.kind === 'account' && parsed.account.kind === 'key' && parsed.account.key.equals(ed.public)).toBe(true);
    expect(formatPasswordLine('bob', hash, CAP_B)).toBe(`bob ${hash} ${CAP_B}`);
  });

  it('refuses bad input with InvalidInputError', () => {
    expect(() => formatKeyLine('bad user', ed.publicLine, CAP_A)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
    expect(() => formatKeyLine('alice', ed.publicLine, 'not-a-cap')).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
    expect(() => formatKeyLine('alice', `restrict ${ed.publicLine}`, CAP_A)).toThrow(/options are not supported/);
    expect(() => formatKeyLine('alice', ed2.type + ' AAAA', CAP_A)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
    expect(() => formatPasswordLine('bob', 'plaintext', CAP_B)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
  });
});

describe('private.example/accounts', () => {
  it('loads nothing as shipped, and every example line parses once uncommented', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('../../private.example/accounts', import.meta.url), 'utf8');
    const asShipped = parseAccountsFile(text);
    expect(asShipped.accounts.size).toBe(0);
    expect(asShipped.errors).toEqual([]);
    const uncommented = text
      .split('\n')
      .map((l) => (l.startsWith('# ') ? l.slice(2) : l))
      .join('\n');
    const { accounts, errors } = parseAccountsFile(uncommented);
    expect(errors).toEqual([]);
    expect([...accounts.keys()]).toEqual(['alice', 'bob@example.com', 'backup', 'mirror']);
    expect(accounts.get('alice')!.keys).toHaveLength(2);
    expect(accounts.get('backup')).toMatchObject({ rootCap: accounts.get('alice')!.rootCap, appendOnly: true, noSnapshots: false });
    expect(accounts.get('mirror')).toMatchObject({ rootCap: accounts.get('alice')!.rootCap, appendOnly: false, noSnapshots: true });
    expect(accounts.get('bob@example.com')!.passwordHash).toMatch(/^\$scrypt\$/);
  });
});
