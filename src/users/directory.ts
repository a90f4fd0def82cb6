import type { ParsedCryptHash } from '../auth/crypt-hash.js';
import type { ParsedKey } from '../auth/ssh-key.js';

/**
 * A central user directory: who a user is, looked up by name at login, with
 * the user's keys and/or password (or the directory's own verdict on the
 * password), and which home the user gets. capstan stores no caps there:
 * homes are created on first login (src/homes).
 *
 * Two contracts implement it (localega.ts, aws-transfer.ts), each over HTTP;
 * cached.ts and limited.ts wrap one for the TTL cache and the bound on
 * lookups in flight, as stores are wrapped for caching and limits.
 */

export type DirectoryFormat = 'localega' | 'aws-transfer';

/** Where a user's root comes from. */
export type HomeSource =
  /** A home created on first login and kept in the slot store under this name (a user name, or an AWS HomeDirectory). */
  | { kind: 'home'; name: string }
  /** The directory named a capstan directory cap: that is the root. */
  | { kind: 'cap'; cap: string };

export interface UserRecord {
  user: string;
  /** Keys OpenSSH would accept for this user; others were dropped (and logged) by the contract. */
  keys: ParsedKey[];
  /** The stored password hash, verified locally (LocalEGA). */
  passwordHash?: ParsedCryptHash;
  /** True when the directory itself checked the password sent with this lookup and accepted it (AWS Transfer). */
  passwordAccepted?: boolean;
  home: HomeSource;
}

export type Lookup =
  | { kind: 'found'; record: UserRecord }
  /** No such user (with a password-checking directory: or a wrong password; the contract cannot tell them apart). */
  | { kind: 'absent' }
  /** No answer worth believing: down, slow, refusing capstan's credentials, garbage. `reason` is safe to log. */
  | { kind: 'unavailable'; reason: string };

export interface LookupRequest {
  user: string;
  /** Sent only to directories that check passwords themselves (passwordChecking). */
  password?: string | undefined;
  /** The client's address, for contracts that pass it on (AWS Transfer's sourceIp). */
  remoteAddress?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface UserDirectory {
  readonly format: DirectoryFormat;
  /**
   * True if a password login needs a lookup with the password (the directory
   * checks it); false if the record holds a hash to check locally, so one
   * lookup serves keys and passwords alike.
   */
  readonly passwordChecking: boolean;
  /** MUST NOT throw: every failure is `unavailable` with a loggable reason (never a password, hash or cap). */
  lookup(request: LookupRequest): Promise<Lookup>;
  close(): Promise<void>;
}
