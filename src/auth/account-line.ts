import { InvalidInputError } from '../errors.js';
import { parsePasswordHash } from './password-hash.js';
import { isKeyTypeToken, parsePublicKey, type ParsedKey } from './ssh-key.js';

/**
 * One line of the accounts file, on its own (grammar in accounts-file.ts).
 * Every error message here is safe to log: it names the fault, never the
 * line's content, since a faulty line may hold a plaintext password or a cap.
 */

/** User names: letters, digits and `._@+-`, 1..64 characters, so e-mail addresses work for account-server users. */
export const USER_NAME_RE = /^[A-Za-z0-9._@+-]{1,64}$/;

/** Lines longer than this are refused unread: a 16384-bit RSA key line is ~2.8 KB. */
export const MAX_LINE_LENGTH = 16 * 1024;

export type CapValidator = (s: string) => boolean;

/** capstan caps: `CS1:KIND:fields`, no whitespace, at most 512 characters (MAX_CAP_LENGTH in src/cap/parse.ts). */
export const defaultValidateCap: CapValidator = (s) => s.length <= 512 && /^CS1:[A-Z0-9-]+:[A-Za-z0-9:_-]+$/.test(s);

export function isValidUserName(user: string): boolean {
  return USER_NAME_RE.test(user);
}

/**
 * Options an account line may carry, in a word between USER and the key or
 * hash (grammar in accounts-file.ts). Every field false is the meaning of a
 * line without options.
 */
export interface AccountOptions {
  /** Clients may add files and change what they added in the same session, never what was there before (src/sftp/append-only.ts). */
  appendOnly: boolean;
  /** No /.snapshots/ folder in the account's root (src/sftp/snapshots-folder.ts); a real entry of that name is then an ordinary one. */
  noSnapshots: boolean;
}

/** The option names of the OPTIONS word, in the order formatOptions writes them. */
export const ACCOUNT_OPTION_NAMES = ['append-only', 'no-snapshots'] as const;

export const NO_OPTIONS: Readonly<AccountOptions> = Object.freeze({ appendOnly: false, noSnapshots: false });

export function sameOptions(a: AccountOptions, b: AccountOptions): boolean {
  return a.appendOnly === b.appendOnly && a.noSnapshots === b.noSnapshots;
}

/** The OPTIONS word for `options`, or undefined when every option is off (the line then has no OPTIONS word). */
export function formatOptions(options: AccountOptions): string | undefined {
  const names: string[] = [];
  if (options.appendOnly) names.push('append-only');
  if (options.noSnapshots) names.push('no-snapshots');
  return names.length > 0 ? names.join(',') : undefined;
}

/** Parses an OPTIONS word; undefined if any item is not a known option (the word is never echoed: it may be a secret). */
function parseOptions(word: string): AccountOptions | undefined {
  const options: AccountOptions = { ...NO_OPTIONS };
  for (const item of word.split(',')) {
    if (item === 'append-only') options.appendOnly = true;
    else if (item === 'no-snapshots') options.noSnapshots = true;
    else return undefined;
  }
  return options;
}

export type AccountLine =
  | { kind: 'key'; user: string; rootCap: string; key: ParsedKey; options: AccountOptions }
  | { kind: 'password'; user: string; rootCap: string; passwordHash: string; options: AccountOptions };

export type LineParseResult =
  | { kind: 'blank' }
  | { kind: 'account'; account: AccountLine }
  /** `user` is the first word if it is a well-formed user name; used to attribute the fault, never logged. */
  | { kind: 'error'; message: string; user?: string };

/** Splits an account line into words; undefined for blank and comment lines. */
export function accountLineWords(line: string): string[] | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  return trimmed.split(/\s+/);
}

/**
 * Whether the second of a line's words is an OPTIONS word: USER OPTIONS
 * KEY-OR-HASH ..., recognised by what follows it (a key type or a `$`
 * hash), so that a line without one reads exactly as before options existed.
 */
export function hasOptionsWord(words: readonly string[]): boolean {
  const [, second, third] = words;
  if (second === undefined || third === undefined) return false;
  return !isKeyTypeToken(second) && !second.startsWith('$') && (isKeyTypeToken(third) || third.startsWith('$'));
}

/** Parses one line of the accounts file. Never throws. */
export function parseAccountLine(line: string, validateCap: CapValidator = defaultValidateCap): LineParseResult {
  if (line.length > MAX_LINE_LENGTH) return { kind: 'error', message: `line longer than ${MAX_LINE_LENGTH} characters` };
  const words = accountLineWords(line);
  if (words === undefined) return { kind: 'blank' };
  const [user, second] = words as [string, string | undefined];
  const error = (message: string): LineParseResult =>
    isValidUserName(user) ? { kind: 'error', message, user } : { kind: 'error', message };

  if (!isValidUserName(user)) return error('invalid user name (allowed: A-Z a-z 0-9 . _ @ + -, 1 to 64 characters)');
  if (second === undefined || words.length < 3) return error('expected USER, then a public key or a $scrypt$ hash, then ROOTCAP');

  if (hasOptionsWord(words)) {
    const options = parseOptions(second);
    if (options === undefined) return error(`unknown account option (known: ${ACCOUNT_OPTION_NAMES.join(', ')})`);
    const rest = parseAccountLine([user, ...words.slice(2)].join(' '), validateCap);
    if (rest.kind !== 'account') return rest;
    return { kind: 'account', account: { ...rest.account, options } };
  }
  const rootCap = words[words.length - 1]!;
  const options = { ...NO_OPTIONS };

  if (second.startsWith('$scrypt$')) {
    if (words.length !== 3) return error('a password line is exactly: USER $scrypt$... ROOTCAP');
    try {
      parsePasswordHash(second);
    } catch (err) {
      return error((err as Error).message);
    }
    if (!validateCap(rootCap)) return error('invalid root capability');
    return { kind: 'account', account: { kind: 'password', user, rootCap, passwordHash: second, options } };
  }
  if (second.startsWith('$')) return error('unsupported password hash scheme (only $scrypt$ is accepted)');

  if (isKeyTypeToken(second)) {
    if (words.length < 4) return error('a key line is: USER KEYTYPE BASE64 [COMMENT...] ROOTCAP');
    let key: ParsedKey;
    try {
      key = parsePublicKey(second, words[2]!);
    } catch (err) {
      return error((err as Error).message);
    }
    if (!validateCap(rootCap)) return error('invalid root capability');
    return { kind: 'account', account: { kind: 'key', user, rootCap, key, options } };
  }

  // USER <word> ROOTCAP where <word> is neither a key type nor a hash: by far
  // the likeliest reading is a plaintext password. Refused, never echoed.
  if (words.length === 3) return error('looks like a plaintext password: store a $scrypt$ hash instead');
  return error('unknown key type or malformed line');
}

/** Throws InvalidInputError unless `user` and `rootCap` are acceptable on an accounts line. */
function checkUserAndCap(user: string, rootCap: string, validateCap: CapValidator): void {
  if (!isValidUserName(user)) throw new InvalidInputError('invalid user name (allowed: A-Z a-z 0-9 . _ @ + -, 1 to 64 characters)');
  if (!validateCap(rootCap)) throw new InvalidInputError('invalid root capability');
}

/**
 * Builds a key line from an authorized_keys-style line (`TYPE BASE64
 * [COMMENT...]`). authorized_keys options (`restrict,command=...`) are refused:
 * capstan would silently ignore them, which is worse than saying so.
 */
export function formatKeyLine(
  user: string,
  authorizedKeysLine: string,
  rootCap: string,
  validateCap: CapValidator = defaultValidateCap,
): string {
  checkUserAndCap(user, rootCap, validateCap);
  const [type, base64, ...comment] = authorizedKeysLine.trim().split(/\s+/);
  if (type === undefined || type === '' || base64 === undefined) {
    throw new InvalidInputError('expected an OpenSSH public key line: TYPE BASE64 [COMMENT]');
  }
  if (!isKeyTypeToken(type)) {
    throw new InvalidInputError(
      [base64, ...comment].some(isKeyTypeToken) ? 'authorized_keys options are not supported' : 'unknown key type',
    );
  }
  const key = parsePublicKey(type, base64);
  const line = [user, type, base64, ...comment, rootCap].join(' ');
  const reparsed = parseAccountLine(line, validateCap);
  if (reparsed.kind !== 'account' || reparsed.account.kind !== 'key' || !reparsed.account.key.equals(key)) {
    throw new InvalidInputError('the key line would not read back as written');
  }
  return line;
}

export function formatPasswordLine(user: string, hash: string, rootCap: string, validateCap: CapValidator = defaultValidateCap): string {
  checkUserAndCap(user, rootCap, validateCap);
  parsePasswordHash(hash);
  return `${user} ${hash} ${rootCap}`;
}

/**
 * `line` (as made by formatKeyLine / formatPasswordLine, without options)
 * with the OPTIONS word for `options` after its user; unchanged when every
 * option is off.
 */
export function withOptions(line: string, options: AccountOptions): string {
  const word = formatOptions(options);
  if (word === undefined) return line;
  const space = line.indexOf(' ');
  const result = `${line.slice(0, space)} ${word}${line.slice(space)}`;
  const reparsed = parseAccountLine(result, () => true);
  if (reparsed.kind !== 'account' || !sameOptions(reparsed.account.options, options)) {
    throw new InvalidInputError('the options would not read back as written');
  }
  return result;
}
