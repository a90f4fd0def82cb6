/**
 * The accounts file (`private/accounts`): who may log in, and the root
 * capability each user gets. This comment is the format's specification.
 *
 * Encoding: UTF-8 text, lines separated by LF or CRLF, at most
 * MAX_ACCOUNTS_FILE_BYTES. Blank lines and lines whose first non-blank
 * character is `#` are ignored. Words are separated by runs of blanks. Every
 * other line is one account line, in one of two forms:
 *
 *     USER [OPTIONS] KEYTYPE BASE64 [COMMENT...] ROOTCAP        a public key
 *     USER [OPTIONS] $scrypt$ln=L,r=R,p=P$SALT$HASH ROOTCAP     a password hash
 *
 * - USER matches `[A-Za-z0-9._@+-]{1,64}` (so e-mail addresses work); it is
 *   case-sensitive.
 * - OPTIONS (optional) is one word: option names separated by commas, no
 *   blanks. It is recognised by its place: the second word, when it is not a
 *   key type and does not start with `$`, and the third word is a key type
 *   or starts with `$`. The options are `append-only` (what it means:
 *   src/sftp/append-only.ts) and `no-snapshots` (no /.snapshots/ folder in
 *   the root: src/sftp/snapshots-folder.ts); account-line.ts
 *   AccountOptions. Both in one word: `append-only,no-snapshots` (any
 *   order; formatOptions writes this one). A name repeated counts once. A line without OPTIONS has every option off, so a
 *   file written before options existed reads exactly as it did.
 * - KEYTYPE BASE64 [COMMENT...] is an OpenSSH authorized_keys line without
 *   options; KEYTYPE is one of ssh-ed25519, ssh-rsa (>= 2048 bits),
 *   ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 (see
 *   ssh-key.ts for the types refused and why). The comment is ignored.
 * - The hash form is specified in password-hash.ts; plaintext passwords are
 *   never accepted.
 * - ROOTCAP is the last word of the line and MUST satisfy the cap validator
 *   (by default `CS1:KIND:fields`).
 *
 * A user MAY have several key lines and at most one password line; all of a
 * user's lines MUST name the same ROOTCAP and the same options (an option is
 * the account's, not one key's). The same key MAY appear for several users
 * (each login names its user), so one root may have an append-only user for
 * the backup client and a full one for the operator who prunes.
 *
 * Errors: a line that breaks any rule is refused with an error naming its line
 * number (1-based) and the fault, never its content; the other lines still
 * load. In particular: an OPTIONS word naming an option this version does
 * not know is refused (the message lists the known options, never the word);
 * `USER WORD ROOTCAP` where WORD is neither a key type nor a `$scrypt$` hash
 * is refused as a plaintext password; a line naming a different ROOTCAP or
 * different options than an earlier line of the same user is refused (the
 * earlier line wins; a key added with other options than the account's
 * therefore cannot log in); a second password line for a user is refused.
 *
 * What a reload does with a file that has errors is decided in
 * reload-policy.ts.
 */
import { parseAccountLine, defaultValidateCap, sameOptions, type AccountOptions, type CapValidator } from './account-line.js';
import type { ParsedKey } from './ssh-key.js';

/** Bound on the file read (and so on the accounts held): ~10^4 key lines. */
export const MAX_ACCOUNTS_FILE_BYTES = 4 * 1024 * 1024;

export interface Account {
  rootCap: string;
  keys: ParsedKey[];
  passwordHash?: string;
  /** The `append-only` option: writes may not change or remove what existed before the session. */
  appendOnly: boolean;
  /** The `no-snapshots` option: /.snapshots/ is not served in this account's root. */
  noSnapshots: boolean;
}

/** The options an account was loaded with. */
export function accountOptions(account: Account): AccountOptions {
  return { appendOnly: account.appendOnly, noSnapshots: account.noSnapshots };
}

/** A refused line. `message` is safe to log; it never contains the line's text. */
export interface LineError {
  line: number;
  message: string;
}

export interface ParsedAccountsFile {
  accounts: Map<string, Account>;
  errors: LineError[];
  /**
   * Users named by at least one refused line (first word a well-formed user
   * name). For the reload policy; not logged, since the first word of a
   * garbled line might not be a user name at all.
   */
  faultyUsers: Set<string>;
  /** Number of lines that were accepted (a line may add nothing new, e.g. a repeated key). */
  validLines: number;
}

export interface ParseAccountsOptions {
  validateCap?: CapValidator | undefined;
}

export function parseAccountsFile(text: string, opts: ParseAccountsOptions = {}): ParsedAccountsFile {
  const validateCap = opts.validateCap ?? defaultValidateCap;
  const accounts = new Map<string, Account>();
  const errors: LineError[] = [];
  const faultyUsers = new Set<string>();
  /** Line where each user's root cap was first named, for the conflict message. */
  const firstLine = new Map<string, number>();
  let validLines = 0;

  const lines = text.split(/\r?\n/);
  for (const [i, text] of lines.entries()) {
    const lineNo = i + 1;
    const result = parseAccountLine(text, validateCap);
    if (result.kind === 'blank') continue;
    if (result.kind === 'error') {
      errors.push({ line: lineNo, message: result.message });
      if (result.user !== undefined) faultyUsers.add(result.user);
      continue;
    }
    const { account: line } = result;
    const existing = accounts.get(line.user);
    if (existing !== undefined && existing.rootCap !== line.rootCap) {
      errors.push({ line: lineNo, message: `names a different root capability than line ${firstLine.get(line.user)} for the same user` });
      faultyUsers.add(line.user);
      continue;
    }
    if (existing !== undefined && !sameOptions(accountOptions(existing), line.options)) {
      errors.push({ line: lineNo, message: `names different options than line ${firstLine.get(line.user)} for the same user` });
      faultyUsers.add(line.user);
      continue;
    }
    if (line.kind === 'password' && existing?.passwordHash !== undefined) {
      errors.push({ line: lineNo, message: `second password line for the same user (first on line ${firstLine.get(line.user)})` });
      faultyUsers.add(line.user);
      continue;
    }
    const account: Account = existing ?? { rootCap: line.rootCap, keys: [], ...line.options };
    if (line.kind === 'password') account.passwordHash = line.passwordHash;
    else if (!account.keys.some((k) => k.equals(line.key))) account.keys.push(line.key);
    if (existing === undefined) {
      accounts.set(line.user, account);
      firstLine.set(line.user, lineNo);
    }
    validLines++;
  }
  return { accounts, errors, faultyUsers, validLines };
}
