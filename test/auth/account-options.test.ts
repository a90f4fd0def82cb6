import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatKeyLine, formatOptions, formatPasswordLine, parseAccountLine, withOptions } from '../../src/auth/account-line.js';
import { listAccounts, setAccountOptions } from '../../src/auth/accounts-edit.js';
import { parseAccountsFile } from '../../src/auth/accounts-file.js';
import { hashPassword } from '../../src/auth/password-hash.js';
import { applyReload } from '../../src/auth/reload-policy.js';
import { CAP_A, CAP_B, makeKey, tempDir, type TestKey } from './helpers.js';

/** The OPTIONS word of an account line (`append-only`, `no-snapshots`): grammar in src/auth/accounts-file.ts. */

let ed: TestKey, rsa: TestKey, hash: string;
beforeAll(async () => {
  [ed, rsa] = [makeKey('ed25519'), makeKey('rsa')];
  hash = await hashPassword('pw', { ln: 10, r: 8, p: 1 });
});

describe('account options in the accounts file', () => {
  it('a file without options reads as before: every account has every option off', () => {
    const text = [
      `alice ${ed.type} ${ed.base64} a comment ${CAP_A}`,
      `alice ${hash} ${CAP_A}`,
      `bob ${rsa.type} ${rsa.base64} ${CAP_B}`,
    ].join('\n');
    const { accounts, errors } = parseAccountsFile(text);
    expect(errors).toEqual([]);
    expect(accounts.get('alice')).toMatchObject({ rootCap: CAP_A, appendOnly: false, noSnapshots: false, passwordHash: hash });
    expect(accounts.get('alice')!.keys).toHaveLength(1);
    expect(accounts.get('bob')).toMatchObject({ rootCap: CAP_B, appendOnly: false, noSnapshots: false });
  });

  it('append-only on key and password lines, a repeated name counting once', () => {
    const text = [
      `backup append-only ${ed.type} ${ed.base64} restic@host ${CAP_A}`,
      `backup append-only,append-only ${hash} ${CAP_A}`,
      `admin ${ed.type} ${ed.base64} ${CAP_A}`,
    ].join('\n');
    const { accounts, errors } = parseAccountsFile(text);
    expect(errors).toEqual([]);
    expect(accounts.get('backup')).toMatchObject({ rootCap: CAP_A, appendOnly: true, passwordHash: hash });
    expect(accounts.get('backup')!.keys).toHaveLength(1);
    // The same key and root under another user without the option: the operator's full account.
    expect(accounts.get('admin')).toMatchObject({ rootCap: CAP_A, appendOnly: false });
  });

  it('no-snapshots alone and with append-only in one comma-separated word, in either order', () => {
    const text = [
      `guest no-snapshots ${ed.type} ${ed.base64} ${CAP_A}`,
      `backup append-only,no-snapshots ${ed.type} ${ed.base64} restic@host ${CAP_A}`,
      `backup no-snapshots,append-only,no-snapshots ${hash} ${CAP_A}`,
    ].join('\n');
    const { accounts, errors } = parseAccountsFile(text);
    expect(errors).toEqual([]);
    expect(accounts.get('guest')).toMatchObject({ appendOnly: false, noSnapshots: true });
    expect(accounts.get('backup')).toMatchObject({ appendOnly: true, noSnapshots: true, passwordHash: hash });
    // A blank inside the word is two words: the second is no key type, so the line is refused.
    expect(parseAccountLine(`guest append-only, no-snapshots ${ed.type} ${ed.base64} ${CAP_A}`).kind).toBe('error');
    // An account's lines must agree on no-snapshots too.
    const mixed = parseAccountsFile(`guest no-snapshots ${ed.type} ${ed.base64} ${CAP_A}\nguest ${hash} ${CAP_A}\n`);
    expect(mixed.errors).toEqual([{ line: 2, message: 'names different options than line 1 for the same user' }]);
  });

  it('an unknown option is refused by line number, naming the known options and never the word', () => {
    const secret = 'hunter2-Secret';
    const text = [
      `alice ${ed.type} ${ed.base64} ${CAP_A}`,
      `bob ${secret} ${rsa.type} ${rsa.base64} ${CAP_B}`,
      `carol append-only,${secret} ${hash} ${CAP_B}`,
    ].join('\n');
    const { accounts, errors, faultyUsers } = parseAccountsFile(text);
    expect(errors.map((e) => e.line)).toEqual([2, 3]);
    for (const e of errors) {
      expect(e.message).toBe('unknown account option (known: append-only, no-snapshots)');
      expect(e.message).not.toContain(secret);
    }
    expect([...accounts.keys()]).toEqual(['alice']);
    expect([...faultyUsers].sort()).toEqual(['bob', 'carol']);
  });

  it('an options word with nothing usable after it is refused without echoing anything', () => {
    for (const line of [`alice append-only ${CAP_A}`, `alice append-only ${ed.type} ${CAP_A}`, `alice append-only $md5$x ${CAP_A}`]) {
      const result = parseAccountLine(line);
      expect(result.kind).toBe('error');
      if (result.kind === 'error') expect(result.message).not.toContain('append-only');
    }
  });

  it("a line whose options differ from the user's first line is refused; a reload keeps the account as it was", () => {
    const before = parseAccountsFile(`alice append-only ${ed.type} ${ed.base64} ${CAP_A}\n`);
    const next = parseAccountsFile(`alice append-only ${ed.type} ${ed.base64} ${CAP_A}\nalice ${rsa.type} ${rsa.base64} ${CAP_A}\n`);
    expect(next.errors).toEqual([{ line: 2, message: 'names different options than line 1 for the same user' }]);
    // The key on the refused line cannot log in at all, rather than with other rights.
    expect(next.accounts.get('alice')!.keys).toHaveLength(1);
    const reload = applyReload(before.accounts, next);
    expect(reload.kind === 'applied' && reload.accounts.get('alice')).toMatchObject({ appendOnly: true });
  });

  it('withOptions writes the word after the user, and a line without options unchanged', () => {
    const line = formatKeyLine('alice', ed.publicLine, CAP_A);
    expect(withOptions(line, { appendOnly: false, noSnapshots: false })).toBe(line);
    const appendOnly = withOptions(line, { appendOnly: true, noSnapshots: false });
    expect(appendOnly).toBe(`alice append-only ${ed.type} ${ed.base64} test@host ${CAP_A}`);
    expect(withOptions(formatPasswordLine('bob', hash, CAP_B), { appendOnly: true, noSnapshots: false })).toBe(
      `bob append-only ${hash} ${CAP_B}`,
    );
    expect(formatOptions({ appendOnly: false, noSnapshots: false })).toBeUndefined();
    expect(formatOptions({ appendOnly: false, noSnapshots: true })).toBe('no-snapshots');
    expect(formatOptions({ appendOnly: true, noSnapshots: true })).toBe('append-only,no-snapshots');
    const parsed = parseAccountLine(appendOnly);
    expect(parsed.kind === 'account' && parsed.account.options).toEqual({ appendOnly: true, noSnapshots: false });
    const both = withOptions(line, { appendOnly: true, noSnapshots: true });
    expect(both).toBe(`alice append-only,no-snapshots ${ed.type} ${ed.base64} test@host ${CAP_A}`);
    const reparsed = parseAccountLine(both);
    expect(reparsed.kind === 'account' && reparsed.account.options).toEqual({ appendOnly: true, noSnapshots: true });
  });
});

describe('setAccountOptions', () => {
  let dir: string, cleanup: () => Promise<void>, path: string;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    path = join(dir, 'accounts');
  });
  afterEach(() => cleanup());

  it('rewrites every line of the user, keeps other lines and comments, and back', async () => {
    const text = [
      '# notes',
      `alice ${ed.type} ${ed.base64} laptop ${CAP_A}`,
      `bob ${rsa.type} ${rsa.base64} ${CAP_B}`,
      `alice ${hash} ${CAP_A}`,
      '',
    ].join('\n');
    await writeFile(path, text);
    expect(await setAccountOptions(path, 'alice', { appendOnly: true })).toBe(2);
    expect(await readFile(path, 'utf8')).toBe(
      [
        '# notes',
        `alice append-only ${ed.type} ${ed.base64} laptop ${CAP_A}`,
        `bob ${rsa.type} ${rsa.base64} ${CAP_B}`,
        `alice append-only ${hash} ${CAP_A}`,
        '',
      ].join('\n'),
    );
    const { accounts } = await listAccounts(path);
    expect(accounts.map((a) => [a.user, a.appendOnly])).toEqual([
      ['alice', true],
      ['bob', false],
    ]);
    expect(await setAccountOptions(path, 'alice', { appendOnly: true })).toBe(0);
    expect(await setAccountOptions(path, 'alice', { appendOnly: false })).toBe(2);
    expect(await readFile(path, 'utf8')).toBe(text);
    await expect(setAccountOptions(path, 'nobody', { appendOnly: true })).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('changes only the options it names: no-snapshots and append-only set and cleared independently', async () => {
    const text = `alice ${ed.type} ${ed.base64} laptop ${CAP_A}\nalice ${hash} ${CAP_A}\n`;
    await writeFile(path, text);
    expect(await setAccountOptions(path, 'alice', { noSnapshots: true })).toBe(2);
    expect(await setAccountOptions(path, 'alice', { appendOnly: true })).toBe(2);
    expect(await readFile(path, 'utf8')).toBe(
      `alice append-only,no-snapshots ${ed.type} ${ed.base64} laptop ${CAP_A}\nalice append-only,no-snapshots ${hash} ${CAP_A}\n`,
    );
    expect((await listAccounts(path)).accounts.map((a) => [a.appendOnly, a.noSnapshots])).toEqual([[true, true]]);
    expect(await setAccountOptions(path, 'alice', { appendOnly: false })).toBe(2);
    expect((await listAccounts(path)).accounts.map((a) => [a.appendOnly, a.noSnapshots])).toEqual([[false, true]]);
    expect(await setAccountOptions(path, 'alice', { noSnapshots: false })).toBe(2);
    expect(await readFile(path, 'utf8')).toBe(text);
  });
});
