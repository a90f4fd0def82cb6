import type { Lookup, LookupRequest } from '../auth/user-lookup.js';

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

// The lookup's shapes are the authenticator's (auth consults this seam; users implements it).
export type { HomeSource, Lookup, LookupRequest, UserRecord } from '../auth/user-lookup.js';

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
