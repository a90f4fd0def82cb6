import { readdir, readFile, stat, symlink, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatKeyLine, formatPasswordLine } from '../../src/auth/account-line.js';
import { addAccountLine, listAccounts, removeUser } from '../../src/auth/accounts-edit.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { keyFingerprint } from '../../src/auth/ssh-key.js';
import { CAP_A, CAP_B, CAP_C, makeKey, tempDir, type TestKey } from './helpers.js';

let ed: TestKey, rsa: TestKey, hash: string;
let dir: string, cleanup: () => Promise<void>, path: string;

beforeAll(async () => {
  [ed, rsa] = [makeKey('ed25519'), makeKey('rsa')];
  hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
});
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  path = join(dir, 'accounts');
});
afterEach(() => cleanup());

describe('accounts file editing', () => {
  it('addAccountLine creates the file with mode 0600 and appends, keeping comments', async () => {
    await addAccountLine(path, formatKeyLine('alice', ed.publicLine, CAP_A));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await writeFile(path, `# operator notes\n${await readFile(path, 'utf8')}\n# trailing comment without newline`);
    await addAccountLine(path, formatPasswordLine('bob', hash, CAP_B));
    const text = await readFile(path, 'utf8');
    expect(text).toBe(
      `# operator notes\nalice ${ed.type} ${ed.base64} test@host ${CAP_A}\n\n# trailing comment without newline\nbob ${hash} ${CAP_B}\n`,
    );
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('addAccountLine refuses a line that would be refused where it lands, and writes nothing', async () => {
    await addAccountLine(path, formatKeyLine('alice', ed.publicLine, CAP_A));
    const before = await readFile(path, 'utf8');
    await expect(addAccountLine(path, formatKeyLine('alice', rsa.publicLine, CAP_C))).rejects.toMatchObject({ name: 'InvalidInputError' });
    await expect(addAccountLine(path, `carol hunter2 ${CAP_A}`)).rejects.toThrow(/plaintext password/);
    await expect(addAccountLine(path, `carol ${hash} ${CAP_A}\ndave ${hash} ${CAP_A}`)).rejects.toMatchObject({
      name: 'InvalidInputError',
    });
    await expect(addAccountLine(path, '# just a comment')).rejects.toMatchObject({ name: 'InvalidInputError' });
    expect(await readFile(path, 'utf8')).toBe(before);
  });

  it("removeUser removes all of a user's lines, keeps everything else byte for byte", async () => {
    const original =
      [
        '# header',
        `alice ${ed.type} ${ed.base64} ${CAP_A}`,
        `bob ${hash} ${CAP_B}\r`,
        '',
        `alice ${rsa.type} ${rsa.base64} ${CAP_A}`,
        '  # alice is our admin',
        'alice broken line',
        `alicex ${hash} ${CAP_C}`,
      ].join('\n') + '\n';
    await writeFile(path, original);
    expect(await removeUser(path, 'alice')).toBe(3);
    expect(await readFile(path, 'utf8')).toBe(
      ['# header', `bob ${hash} ${CAP_B}\r`, '', '  # alice is our admin', `alicex ${hash} ${CAP_C}`].join('\n') + '\n',
    );
    expect(await removeUser(path, 'nobody')).toBe(0);
    await expect(removeUser(join(dir, 'missing'), 'alice')).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('edits go through a symlink to its target', async () => {
    const target = join(dir, 'real-accounts');
    await writeFile(target, `bob ${hash} ${CAP_B}\n`);
    await symlink(target, path);
    await addAccountLine(path, formatKeyLine('alice', ed.publicLine, CAP_A));
    expect((await lstat(path)).isSymbolicLink()).toBe(true);
    expect(await readFile(target, 'utf8')).toContain('alice ');
  });

  it('listAccounts shows users and fingerprints, caps only on request', async () => {
    await writeFile(
      path,
      [`bob ${hash} ${CAP_B}`, `alice ${ed.type} ${ed.base64} ${CAP_A}`, `alice ${rsa.type} ${rsa.base64} ${CAP_A}`, 'junk'].join('\n'),
    );
    const plain = await listAccounts(path);
    expect(plain.accounts).toEqual([
      {
        user: 'alice',
        hasPassword: false,
        appendOnly: false,
        noSnapshots: false,
        keys: [
          { type: 'ssh-ed25519', fingerprint: keyFingerprint(ed.public) },
          { type: 'ssh-rsa', fingerprint: keyFingerprint(rsa.public) },
        ],
      },
      { user: 'bob', hasPassword: true, appendOnly: false, noSnapshots: false, keys: [] },
    ]);
    expect(JSON.stringify(plain)).not.toContain('CS1:');
    expect(JSON.stringify(plain)).not.toContain(hash.slice(20));
    expect(plain.errors.map((e) => e.line)).toEqual([4]);
    const withCaps = await listAccounts(path, { includeCaps: true });
    expect(withCaps.accounts.map((a) => a.rootCap)).toEqual([CAP_A, CAP_B]);
    expect(keyFingerprint(ed.public)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
