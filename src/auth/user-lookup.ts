import type { ParsedCryptHash } from './crypt-hash.js';
import type { ParsedKey } from './ssh-key.js';

/**
 * What the authenticator asks of the layers above it that know users it does
 * not: a central user directory (src/users implements the lookup) and the
 * homes of its users (src/homes answers the opening). The shapes live here,
 * at the lower layer, so those layers depend on auth and never the reverse.
 */

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

/** A home opened at login: its root cap (made now if `created`), or the time it was revoked. */
export type HomeOpening = { kind: 'live'; cap: string; created: boolean } | { kind: 'revoked'; since: Date };
