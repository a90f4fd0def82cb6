import { readFile } from 'node:fs/promises';
import { InvalidInputError, NotFoundError } from '../errors.js';
import {
  accountLineWords,
  formatOptions,
  hasOptionsWord,
  parseAccountLine,
  type AccountOptions,
  type CapValidator,
} from './account-line.js';
import { MAX_ACCOUNTS_FILE_BYTES, parseAccountsFile, type LineError } from './accounts-file.js';
import { keyFingerprint } from './ssh-key.js';
import { writeFileAtomic } from '../util/atomic-file.js';

/**
 * Edits of the accounts file for the CLI. Every edit keeps comments, blank
 * lines and other users' lines byte for byte, and replaces the file by
 * writing a temp file (mode 0600) in the same directory and renaming it over
 * the original, so a running gateway never reads a half-written file.
 *
 * Two edits running at once can lose one of them (last rename wins); the CLI
 * is meant to be run by one operator at a time.
 */

export interface EditOptions {
  validateCap?: CapValidator | undefined;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    if (Buffer.byteLength(text) > MAX_ACCOUNTS_FILE_BYTES)
      throw new InvalidInputError(`accounts file larger than ${MAX_ACCOUNTS_FILE_BYTES} bytes`);
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Appends one account line (as made by formatKeyLine / formatPasswordLine),
 * creating the file if needed. Throws InvalidInputError if the line would be
 * refused where it lands, e.g. a different root cap than the user's existing
 * lines; nothing is written then.
 */
export async function addAccountLine(path: string, line: string, opts: EditOptions = {}): Promise<void> {
  if (/[\r\n]/.test(line)) throw new InvalidInputError('an account line cannot contain a line break');
  const alone = parseAccountLine(line, opts.validateCap);
  if (alone.kind === 'blank') throw new InvalidInputError('not an account line');
  if (alone.kind === 'error') throw new InvalidInputError(alone.message);
  const before = (await readIfExists(path)) ?? '';
  const prefix = before === '' || before.endsWith('\n') ? before : before + '\n';
  const after = `${prefix}${line}\n`;
  const newLineNo = after.split(/\r?\n/).length - 1;
  const refused = parseAccountsFile(after, opts).errors.find((e) => e.line === newLineNo);
  if (refused !== undefined) throw new InvalidInputError(refused.message);
  await writeFileAtomic(path, after);
}

/** Removes every account line of `user` (accepted or not). Returns how many lines went; writes only if some did. */
export async function removeUser(path: string, user: string): Promise<number> {
  const before = await readIfExists(path);
  if (before === undefined) throw new NotFoundError('accounts file not found');
  // split with a capturing group keeps each line's own terminator (LF or CRLF).
  const parts = before.split(/(\r?\n)/);
  let removed = 0;
  const kept: string[] = [];
  for (let i = 0; i < parts.length; i += 2) {
    const line = parts[i]!;
    const eol = parts[i + 1] ?? '';
    if (accountLineWords(line)?.[0] === user) {
      removed++;
      continue;
    }
    kept.push(line + eol);
  }
  if (removed > 0) await writeFileAtomic(path, kept.join(''));
  return removed;
}

/**
 * Sets the options named in `change` on every accepted line of `user` (an
 * option is the account's, so all its lines change together; options not
 * named keep their value): each line's OPTIONS word is
 * replaced, added or dropped, and its other words kept (a changed line is
 * rewritten with single blanks between words); other lines are kept byte
 * for byte.
 * Returns how many lines changed; writes only if some did. Throws
 * NotFoundError if `user` has no accepted line.
 */
export async function setAccountOptions(
  path: string,
  user: string,
  change: Partial<AccountOptions>,
  opts: EditOptions = {},
): Promise<number> {
  const before = await readIfExists(path);
  if (before === undefined) throw new NotFoundError('accounts file not found');
  const parts = before.split(/(\r?\n)/);
  let named = 0;
  let changed = 0;
  for (let i = 0; i < parts.length; i += 2) {
    const line = parts[i]!;
    const parsed = parseAccountLine(line, opts.validateCap);
    if (parsed.kind !== 'account' || parsed.account.user !== user) continue;
    named++;
    const words = accountLineWords(line)!;
    const rest = words.slice(hasOptionsWord(words) ? 2 : 1);
    const word = formatOptions({ ...parsed.account.options, ...change });
    const next = [user, ...(word !== undefined ? [word] : []), ...rest].join(' ');
    if (next === line.trim()) continue;
    parts[i] = next;
    changed++;
  }
  if (named === 0) throw new NotFoundError(`no account named ${user}`);
  const after = parts.join('');
  const check = parseAccountsFile(after, opts);
  if (check.faultyUsers.has(user)) throw new InvalidInputError('the edited lines of this user would be refused');
  if (changed > 0) await writeFileAtomic(path, after);
  return changed;
}

export interface AccountSummary {
  user: string;
  keys: { type: string; fingerprint: string }[];
  hasPassword: boolean;
  appendOnly: boolean;
  noSnapshots: boolean;
  /** Present only when asked for with includeCaps: it is a secret. */
  rootCap?: string;
}

export interface ListOptions extends EditOptions {
  includeCaps?: boolean;
}

/** The accounts the file defines (as a first load would read it), sorted by user, and its refused lines. */
export async function listAccounts(path: string, opts: ListOptions = {}): Promise<{ accounts: AccountSummary[]; errors: LineError[] }> {
  const text = await readIfExists(path);
  if (text === undefined) throw new NotFoundError('accounts file not found');
  const parsed = parseAccountsFile(text, opts);
  const accounts = [...parsed.accounts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(
      ([user, account]): AccountSummary => ({
        user,
        keys: account.keys.map((k) => ({ type: k.type, fingerprint: keyFingerprint(k) })),
        hasPassword: account.passwordHash !== undefined,
        appendOnly: account.appendOnly,
        noSnapshots: account.noSnapshots,
        ...(opts.includeCaps === true ? { rootCap: account.rootCap } : {}),
      }),
    );
  return { accounts, errors: parsed.errors };
}
