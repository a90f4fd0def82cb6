import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { parseDirectoryCap } from '../../cap/index.js';
import {
  addAccountLine,
  formatKeyLine,
  formatPasswordLine,
  hashPassword,
  isValidUserName,
  MAX_PASSWORD_BYTES,
  withOptions,
} from '../../auth/index.js';
import type { NodeConfig } from '../../config/index.js';
import { InvalidInputError } from '../../errors.js';
import { loadNodeConfig, out, readStdinText, withNode, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';
import { applyQuota, existingAccount, quotaChange } from '../accounts.js';

interface AccountAddArgs extends GlobalArgs {
  user: string;
  key?: string;
  passwordStdin?: boolean;
  root?: string;
  quota?: string;
  maxFiles?: string;
  appendOnly?: boolean;
  snapshots?: boolean;
}

/** The first key line of an OpenSSH .pub or authorized_keys file. */
async function readKeyLine(file: string): Promise<string> {
  const text = (await readFile(file, 'utf8')).slice(0, 64 * 1024);
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (line === undefined) throw new InvalidInputError(`${file} holds no public key line`);
  return line;
}

/** The password on stdin, without the line break `echo` or a here-string adds. */
export async function readPasswordFromStdin(): Promise<string> {
  const text = await readStdinText(MAX_PASSWORD_BYTES + 2);
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new UsageError('--password-stdin: stdin is empty');
  return password;
}

/**
 * Whether the gateway refuses every login as `user`: a name on [defender]
 * refused_users (root, admin, …; case-insensitive, as the defender compares).
 * Such an account could never log in, and each try would score towards a ban.
 */
export function isRefusedName(config: NodeConfig, user: string): boolean {
  const lower = user.toLowerCase();
  return config.defender.refusedUsers.some((name) => name.toLowerCase() === lower);
}

export const accountAddCommand: CommandModule<GlobalArgs, AccountAddArgs> = {
  command: 'add <user>',
  describe: 'Add a key or a password for USER and print the root cap (a new root directory unless --root or USER already has one)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('user', { type: 'string', demandOption: true, describe: 'user name (letters, digits, ._@+-)' })
      .option('key', { type: 'string', describe: 'OpenSSH public key file (.pub)' })
      .option('password-stdin', { type: 'boolean', describe: 'read a password from stdin; only its scrypt hash is stored' })
      .option('root', { type: 'string', describe: 'root directory cap to give the user (default: a new directory)' })
      .option('quota', { type: 'string', describe: 'byte quota (K, M, G, T suffixes), written to the quotas file' })
      .option('max-files', { type: 'string', describe: 'file count quota, written to the quotas file' })
      .option('append-only', {
        type: 'boolean',
        describe:
          'clients may add files but not change or remove what existed before their session (backup targets); default: as USER already is',
      })
      .option('snapshots', {
        type: 'boolean',
        describe:
          'as --no-snapshots: no /.snapshots/ folder in the root for this account (the no-snapshots option); default: as USER already is',
      })
      .conflicts('key', 'password-stdin')
      .check((a) => {
        if (a.key === undefined && a['password-stdin'] !== true) throw new UsageError('give --key FILE or --password-stdin');
        return true;
      })
      .example('$0 account add alice --key ~/.ssh/id_ed25519.pub', 'key login, new root directory')
      .example('$0 account add backup --append-only --key restic.pub --root "$ROOT"', 'a backup client that cannot delete')
      .example('$0 account add mirror --no-snapshots --key rsync.pub --root "$ROOT"', 'a login that does not see /.snapshots/')
      .example(
        'printf %s "$PW" | $0 account add bob --password-stdin --root "$ROOT"',
        'password login to an existing directory',
      ) as unknown as Argv<AccountAddArgs>,
  handler: async (args) => {
    if (!isValidUserName(args.user)) throw new UsageError('invalid user name (allowed: A-Z a-z 0-9 . _ @ + -, 1 to 64 characters)');
    const config = await loadNodeConfig(args);
    if (isRefusedName(config, args.user)) {
      throw new UsageError(
        `${args.user} is in [defender] refused_users, so the gateway refuses every login as ${args.user}: pick another name (or take it off that list in capstan.cfg)`,
      );
    }
    const accountsFile = config.sftpd.accountsFile;

    // Read and check everything before creating a directory for the account.
    const keyLine = args.key !== undefined ? await readKeyLine(args.key) : undefined;
    if (keyLine !== undefined) formatKeyLine(args.user, keyLine, 'CS1:DIR:placeholder');
    const hash = args.passwordStdin === true ? await hashPassword(await readPasswordFromStdin()) : undefined;
    quotaChange(args); // a bad --quota fails before anything is written

    const existing = await existingAccount(accountsFile, args.user);
    const current = existing?.rootCap;
    // An option is the account's: a new line takes the account's, and a different one is a change of the account.
    const appendOnly = args.appendOnly ?? existing?.appendOnly ?? false;
    if (existing !== undefined && existing.appendOnly !== appendOnly) {
      throw new InvalidInputError(
        `${args.user} is ${existing.appendOnly ? '' : 'not '}append-only; change that for all its lines with capstan account set ${args.user} --${appendOnly ? '' : 'no-'}append-only`,
      );
    }
    const noSnapshots = args.snapshots !== undefined ? !args.snapshots : (existing?.noSnapshots ?? false);
    if (existing !== undefined && existing.noSnapshots !== noSnapshots) {
      throw new InvalidInputError(
        `${args.user} has ${existing.noSnapshots ? 'no ' : ''}/.snapshots/; change that for all its lines with capstan account set ${args.user} --${noSnapshots ? 'no-' : ''}snapshots`,
      );
    }
    let rootCap: string;
    if (args.root !== undefined) {
      rootCap = parseDirectoryCap(args.root).toString();
      if (current !== undefined && current !== rootCap) {
        throw new InvalidInputError(`${args.user} already has a different root directory; remove the account first to change it`);
      }
    } else if (current !== undefined) {
      rootCap = current;
    } else {
      rootCap = await withNode(args, async ({ tree }) => (await tree.createDirectory()).toString());
    }
    const bare = keyLine !== undefined ? formatKeyLine(args.user, keyLine, rootCap) : formatPasswordLine(args.user, hash!, rootCap);
    const line = withOptions(bare, { appendOnly, noSnapshots });
    await addAccountLine(accountsFile, line);
    if (args.quota !== undefined || args.maxFiles !== undefined) await applyQuota(args);
    await out(`${rootCap}\n`);
  },
};
