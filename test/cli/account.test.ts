import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFingerprint, parseAccountsFile, verifyPassword } from '../../src/auth/index.js';
import { CAP_IN_TEXT, makeTempDir, oneErrorLine, runCli, stopAllCli, cliAt } from '../helpers/cli.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';

const { utils } = ssh2;

let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let accountsFile: string;

const { ok } = cliAt(() => node);

async function writeKey(name: string): Promise<{ file: string; fingerprint: string }> {
  const pair = generateSshKeyPair('ed25519', { comment: `${name}@test` });
  const file = path.join(tmp.dir, `${name}.pub`);
  await writeFile(file, `${pair.public}\n`);
  const parsed = utils.parseKey(pair.public);
  if (parsed instanceof Error) throw parsed;
  return { file, fingerprint: keyFingerprint(parsed) };
}

beforeAll(async () => {
  tmp = await makeTempDir();
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  accountsFile = path.join(node, 'private/accounts');
});
afterAll(async () => {
  await stopAllCli();
  await tmp.cleanup();
});

describe('capstan account', () => {
  it('add --key creates a root directory, writes a key line and prints the root cap', async () => {
    const key = await writeKey('alice');
    const root = (await ok(['account', 'add', 'alice', '--key', key.file])).trim();
    expect(root).toMatch(/^CS1:DIR:/);
    const parsed = parseAccountsFile(await readFile(accountsFile, 'utf8'));
    expect(parsed.errors).toEqual([]);
    expect(parsed.accounts.get('alice')!.rootCap).toBe(root);
    expect(await ok(['ls', root])).toBe('');

    // a second key for the same user keeps the same root
    const second = await writeKey('alice2');
    expect((await ok(['account', 'add', 'alice', '--key', second.file])).trim()).toBe(root);
    const listed = await ok(['account', 'list']);
    expect(listed).toContain(`alice\tkey\tssh-ed25519\t${key.fingerprint}\n`);
    expect(listed).toContain(`alice\tkey\tssh-ed25519\t${second.fingerprint}\n`);
    expect(listed).not.toMatch(CAP_IN_TEXT);
  });

  it('add --password-stdin stores only a scrypt hash; --root gives an existing directory', async () => {
    const shared = (await ok(['mkdir'])).trim();
    const root = (await ok(['account', 'add', 'bob@example.com', '--password-stdin', '--root', shared], 'correct horse\n')).trim();
    expect(root).toBe(shared);
    const text = await readFile(accountsFile, 'utf8');
    expect(text).not.toContain('correct horse');
    const bob = parseAccountsFile(text).accounts.get('bob@example.com')!;
    expect(bob.rootCap).toBe(shared);
    // the trailing newline from echo is not part of the password
    expect(await verifyPassword('correct horse', bob.passwordHash!)).toBe(true);

    const listed = await ok(['account', 'list']);
    expect(listed).toContain('bob@example.com\tpassword\n');
    expect(listed).not.toMatch(CAP_IN_TEXT);
    const withCaps = await ok(['account', 'list', '--show-caps']);
    expect(withCaps).toContain(`bob@example.com\troot\t${shared}\n`);

    // a different root for an existing user is refused
    const other = (await ok(['mkdir'])).trim();
    const key = await writeKey('bob');
    const refused = await runCli(['-d', node, 'account', 'add', 'bob@example.com', '--key', key.file, '--root', other]);
    expect(refused.code).not.toBe(0);
    expect(oneErrorLine(refused)).toMatch(/already has a different root/);
    expect(refused.stderr).not.toMatch(CAP_IN_TEXT);
  });

  it('hash-password prints a hash the accounts file accepts', async () => {
    const hash = (await ok(['account', 'hash-password'], 'pw')).trim();
    expect(hash).toMatch(/^\$scrypt\$ln=\d+,r=\d+,p=\d+\$/);
    expect(await verifyPassword('pw', hash)).toBe(true);
  });

  it('remove deletes every line of a user, and says so when there is none', async () => {
    await ok(['account', 'remove', 'alice']);
    const parsed = parseAccountsFile(await readFile(accountsFile, 'utf8'));
    expect(parsed.accounts.has('alice')).toBe(false);
    expect(parsed.accounts.has('bob@example.com')).toBe(true);
    const again = await runCli(['-d', node, 'account', 'remove', 'alice']);
    expect(again.code).not.toBe(0);
    expect(oneErrorLine(again)).toBe('capstan: no account named alice');
  });

  it("add --append-only writes the option; later lines take the account's; set --[no-]append-only rewrites every line", async () => {
    const first = await writeKey('backup');
    const root = (await ok(['account', 'add', 'backup', '--append-only', '--key', first.file])).trim();
    const second = await writeKey('backup2');
    // No flag: the new line takes the account's option, so the user stays one account.
    expect((await ok(['account', 'add', 'backup', '--key', second.file])).trim()).toBe(root);
    let parsed = parseAccountsFile(await readFile(accountsFile, 'utf8'));
    expect(parsed.errors).toEqual([]);
    expect(parsed.accounts.get('backup')).toMatchObject({ rootCap: root, appendOnly: true });
    expect(parsed.accounts.get('backup')!.keys).toHaveLength(2);
    expect(await ok(['account', 'list'])).toContain('backup\toption\tappend-only\n');

    // A different option on one line would split the account: refused, pointing at account set.
    const third = await writeKey('backup3');
    const refused = await runCli(['-d', node, 'account', 'add', 'backup', '--no-append-only', '--key', third.file]);
    expect(refused.code).not.toBe(0);
    expect(oneErrorLine(refused)).toMatch(/backup is append-only; .*account set backup --no-append-only/);

    expect(await ok(['account', 'set', 'backup', '--no-append-only'])).toMatch(/^backup: not append-only \(2 lines changed/);
    parsed = parseAccountsFile(await readFile(accountsFile, 'utf8'));
    expect(parsed.accounts.get('backup')).toMatchObject({ appendOnly: false });
    expect(await ok(['account', 'list'])).not.toContain('backup\toption');
    expect(await ok(['account', 'set', 'backup', '--append-only'])).toMatch(/^backup: append-only \(2 lines changed/);
    expect(parseAccountsFile(await readFile(accountsFile, 'utf8')).accounts.get('backup')).toMatchObject({ appendOnly: true });
    expect(await ok(['account', 'show', 'backup'])).toMatch(/^accounts file 2 keys, append-only$/m);
    const unknown = await runCli(['-d', node, 'account', 'set', 'nobody', '--append-only']);
    expect(oneErrorLine(unknown)).toBe('capstan: no account named nobody');
  });

  it('add --no-snapshots writes the option beside append-only; set --[no-]snapshots changes only it; list and show name it', async () => {
    const first = await writeKey('mirror');
    const root = (await ok(['account', 'add', 'mirror', '--no-snapshots', '--append-only', '--key', first.file])).trim();
    const second = await writeKey('mirror2');
    expect((await ok(['account', 'add', 'mirror', '--key', second.file])).trim()).toBe(root);
    let parsed = parseAccountsFile(await readFile(accountsFile, 'utf8'));
    expect(parsed.errors).toEqual([]);
    expect(parsed.accounts.get('mirror')).toMatchObject({ rootCap: root, appendOnly: true, noSnapshots: true });
    expect(await readFile(accountsFile, 'utf8')).toMatch(/^mirror append-only,no-snapshots ssh-ed25519 /m);
    const listed = await ok(['account', 'list']);
    expect(listed).toContain('mirror\toption\tappend-only\n');
    expect(listed).toContain('mirror\toption\tno-snapshots\n');
    expect(await ok(['account', 'show', 'mirror'])).toMatch(/^accounts file 2 keys, append-only, no-snapshots$/m);

    const third = await writeKey('mirror3');
    const refused = await runCli(['-d', node, 'account', 'add', 'mirror', '--snapshots', '--key', third.file]);
    expect(oneErrorLine(refused)).toMatch(/mirror has no \/\.snapshots\/; .*account set mirror --snapshots/);

    expect(await ok(['account', 'set', 'mirror', '--snapshots'])).toMatch(/^mirror: \/\.snapshots\/ shown \(2 lines changed/);
    parsed = parseAccountsFile(await readFile(accountsFile, 'utf8'));
    expect(parsed.accounts.get('mirror')).toMatchObject({ appendOnly: true, noSnapshots: false });
    expect(await ok(['account', 'list'])).not.toContain('mirror\toption\tno-snapshots');
    expect(await ok(['account', 'set', 'mirror', '--no-snapshots', '--no-append-only'])).toMatch(
      /^mirror: not append-only, no \/\.snapshots\/ \(2 lines changed/,
    );
    parsed = parseAccountsFile(await readFile(accountsFile, 'utf8'));
    expect(parsed.accounts.get('mirror')).toMatchObject({ appendOnly: false, noSnapshots: true });
    expect(await readFile(accountsFile, 'utf8')).toMatch(/^mirror no-snapshots ssh-ed25519 /m);
  });

  it('refuses bad input with one line', async () => {
    const cases: [string[], RegExp, string?][] = [
      [['account', 'add', 'carol'], /give --key FILE or --password-stdin/],
      [['account', 'add', 'carol', '--key', '/nonexistent.pub'], /ENOENT/],
      [['account', 'add', 'bad name!', '--password-stdin'], /invalid user name/, 'pw'],
      [['account', 'add', 'carol', '--password-stdin'], /stdin is empty/, ''],
      [['account', 'add', 'carol', '--password-stdin', '--key', 'x'], /mutually exclusive/, 'pw'],
      [['account', 'add', 'carol', '--password-stdin', '--root', 'CS1:CHK:aaaa'], /malformed|not a directory/, 'pw'],
    ];
    for (const [args, message, input] of cases) {
      const r = await runCli(['-d', node, ...args], input !== undefined ? { input } : {});
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(oneErrorLine(r), args.join(' ')).toMatch(message);
    }
  });
});
