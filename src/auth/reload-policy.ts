import type { Account, ParsedAccountsFile } from './accounts-file.js';

/**
 * What a re-read of the accounts file means, given what was in force before.
 *
 * The file is edited by hand and by editors that truncate-then-write, so a
 * re-read can see a half-written or mistyped file. The rules, in order:
 *
 * 1. Unreadable file (missing, permission, too large): handled by the caller
 *    (accounts-watcher.ts); everything in force stays in force.
 * 2. The new text has no accepted line while the accounts in force are not
 *    empty (an emptied or truncated file, or one where every line is broken):
 *    everything in force stays in force. Consequence: emptying the file does
 *    NOT lock everyone out; stop the gateway for that.
 * 3. Otherwise, per user:
 *    - a user all of whose lines were accepted gets exactly the new meaning;
 *    - a user named by a refused line keeps exactly its previous account if
 *      it had one (its accepted lines in the new text are ignored too: a
 *      user's lines take effect together, so a typo in one of them does not
 *      half-apply an edit, e.g. drop a key while the replacement is broken);
 *    - a user named by a refused line who had no previous account gets what
 *      its accepted lines say (as on first load);
 *    - a user no longer named by any line is removed.
 *    A refused line whose first word is not a well-formed user name cannot be
 *    attributed to anyone and changes nothing.
 *
 * The flip side of rule 3 is that revoking a key of a user whose other line
 * is broken waits until the line is fixed; the refusal is logged at error
 * level with its line number so the operator sees it.
 */
export type ReloadOutcome =
  | { kind: 'kept'; reason: 'no-valid-lines' }
  | { kind: 'applied'; accounts: Map<string, Account>; keptUsers: string[] };

export function applyReload(previous: ReadonlyMap<string, Account>, next: ParsedAccountsFile): ReloadOutcome {
  if (next.validLines === 0 && previous.size > 0) return { kind: 'kept', reason: 'no-valid-lines' };
  const accounts = new Map(next.accounts);
  const keptUsers: string[] = [];
  for (const user of next.faultyUsers) {
    const before = previous.get(user);
    if (before !== undefined) {
      accounts.set(user, before);
      keptUsers.push(user);
    }
  }
  return { kind: 'applied', accounts, keptUsers: keptUsers.sort() };
}
