import type { Logger } from '../log.js';
import { isValidUserName } from './account-line.js';
import type { Account } from './accounts-file.js';
import { CryptVerifier, type ParsedCryptHash } from './crypt-hash.js';
import { DEFAULT_HASH_CONCURRENCY, HashLimiter } from './hash-limiter.js';
import { DEFAULT_SCRYPT_PARAMS, dummyPasswordHash, parsePasswordHash, verifyPassword, type ParsedPasswordHash } from './password-hash.js';
import { keyFingerprint, keyMatches, verifySignature } from './ssh-key.js';
import type { HomeOpening, HomeSource, Lookup, LookupRequest, UserRecord } from './user-lookup.js';

interface LoginBase {
  user: string;
  method: 'publickey' | 'password';
  keyFingerprint?: string;
  /**
   * The session may add but not change what existed before it (src/sftp/append-only.ts).
   * Only the accounts file can say so: the account server's answer is a cap
   * and nothing else, and the user directories' records carry no such field.
   */
  appendOnly: boolean;
  /** No /.snapshots/ folder for this login (the accounts file's `no-snapshots` option; absent: false). */
  noSnapshots?: boolean | undefined;
}

/** The login's `noSnapshots`, only for an account with the option (a result without it reads as false). */
function noSnapshotsOf(account: Account): { noSnapshots?: true } {
  return account.noSnapshots ? { noSnapshots: true } : {};
}

/**
 * Who logged in and where their root comes from: a cap (the accounts file,
 * the account server, or a directory cap a user directory named), or a home
 * of a user-directory user, opened (created on first login) by
 * Authenticator.openRoot once the credential is proven.
 */
export type LoginResult = LoginBase & ({ rootCap: string } | { home: string });

/** Where an attempt comes from (for the log and for contracts that pass it on), and its connection's lifetime. */
export interface AuthAttemptMeta {
  remoteAddress?: string;
  /** Aborted when the connection ends (its login grace ran out, say): a lookup for it stops waiting. */
  signal?: AbortSignal | undefined;
}

/**
 * What the SFTP frontend asks. None of these methods throws: every failure
 * (unknown user, wrong secret, account server down) is `null` / `false`.
 */
export interface Authenticator {
  /** Does this user have a key line with this public key? (no signature check here; ssh2 does that with the signature we verify) */
  acceptsPublicKey(user: string, key: { algo: string; data: Buffer }, meta?: AuthAttemptMeta): Promise<LoginResult | null>;
  /** Whether RSA signatures over SHA-1 (`ssh-rsa`) are accepted (createAuthenticator's allowRsaSha1). */
  readonly acceptsRsaSha1: boolean;
  /** verify a signature for publickey auth: returns true if `signature` over `blob` verifies with `key` */
  verifyPublicKeySignature(key: { algo: string; data: Buffer }, blob: Buffer, signature: Buffer, hashAlgo?: string): boolean;
  /**
   * MUST take the same time and give the same answer for an unknown user, a
   * user without a password and a wrong password: each costs one scrypt.
   */
  checkPassword(user: string, password: string, meta?: AuthAttemptMeta): Promise<LoginResult | null>;
  /**
   * The root cap of a login whose credential has been proven (signature
   * verified, password checked): `rootCap`, or the user's home, created here
   * on first login. null refuses the login (revoked home, slot store down:
   * logged here). Never throws.
   */
  openRoot(result: LoginResult, meta?: AuthAttemptMeta): Promise<string | null>;
  /**
   * Whether `user` has an account, for scoring a refusal after the fact:
   * true, false, or undefined when the user directory could not say (it is
   * down): such a refusal is not a failed guess. Asks nothing remote.
   */
  knowsUser(user: string): boolean | undefined;
  /** Closes the account sources it was given. */
  close(): Promise<void>;
}

/** The accounts file as the authenticator needs it (AccountsFile satisfies it). */
export interface AccountSource {
  get(user: string): Account | undefined;
  readonly accounts: ReadonlyMap<string, Account>;
  close(): Promise<void>;
}

/** The account server as the authenticator needs it (AccountServerClient satisfies it). */
export interface PasswordAuthority {
  authenticate(user: string, password: string): Promise<string | null>;
  close(): Promise<void>;
}

/** A user directory (src/users) as the authenticator needs it: CachedUserDirectory satisfies it. */
export interface DirectorySource {
  readonly passwordChecking: boolean;
  lookup(request: LookupRequest): Promise<Lookup>;
  knowledge(user: string): 'known' | 'unknown' | 'unavailable' | undefined;
  close(): Promise<void>;
}

/** The homes of user-directory users (HomeStore satisfies it). */
export interface HomeSourceStore {
  openOrCreate(name: string, options?: { signal?: AbortSignal | undefined }): Promise<HomeOpening>;
}

export interface AuthenticatorOptions {
  accountsFile?: AccountSource;
  accountServer?: PasswordAuthority;
  /** A central user directory ([sftpd] users.url), asked about users not in the accounts file. */
  userDirectory?: DirectorySource;
  /** Where user-directory users' homes live; without it, only users whose directory names a cap can log in. */
  homes?: HomeSourceStore;
  /** Checks the bcrypt and crypt(3) hashes a user directory holds (one is made if not given). */
  cryptVerifier?: CryptVerifier;
  logger: Logger;
  /** Accept RSA signatures over SHA-1 (`ssh-rsa`), for clients older than OpenSSH 7.2. Off by default. */
  allowRsaSha1?: boolean;
  /** Password checks running at once (default DEFAULT_HASH_CONCURRENCY) / waiting (see HashLimiter). */
  hashConcurrency?: number;
  maxQueuedHashes?: number;
  /** The scrypt check; replaceable so tests can count calls. */
  verifyPassword?: (password: string, hash: ParsedPasswordHash) => Promise<boolean>;
}

/**
 * The authenticator: accounts file first, then the user directory or the
 * account server.
 *
 * Decisions:
 * - A user named in the accounts file is decided by the file alone: a
 *   key-only file user is not asked about at the account server, so a
 *   same-named account there cannot shadow the root cap the operator chose.
 * - Every password attempt costs exactly one scrypt with the accounts file's
 *   parameters (the dummy hash takes those of the first hash in the file,
 *   default otherwise), whether the user is unknown, key-only or has a hash;
 *   users absent from the file then also go to the account server, whose
 *   latency no local trick can hide.
 * - With a user directory, a user not in the file is looked up there
 *   instead (no dummy scrypt: the directory's own latency tells anyone who
 *   measures whether the name is a file user, so hiding it would only cost
 *   CPU on every guess). A LocalEGA record's hash is checked here, one check
 *   per attempt behind the same limiter as scrypt; an AWS Transfer provider
 *   checks the password itself. A user without a password (key only) is
 *   refused without a check.
 */
export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const { accountsFile, accountServer, userDirectory, homes } = opts;
  const logger = opts.logger.child({ component: 'auth' });
  const crypt = opts.cryptVerifier ?? (userDirectory !== undefined ? new CryptVerifier() : undefined);
  const limiter = new HashLimiter(opts.hashConcurrency ?? DEFAULT_HASH_CONCURRENCY, opts.maxQueuedHashes ?? 256);
  const verify = opts.verifyPassword ?? verifyPassword;
  const dummies = new WeakMap<ReadonlyMap<string, Account>, ParsedPasswordHash>();

  /** A dummy with the same cost as this version of the file's hashes; remade when the file reloads (its Map is replaced). */
  function dummyFor(accounts: ReadonlyMap<string, Account> | undefined): ParsedPasswordHash {
    if (accounts === undefined) return dummyPasswordHash(DEFAULT_SCRYPT_PARAMS);
    let dummy = dummies.get(accounts);
    if (dummy === undefined) {
      let params = DEFAULT_SCRYPT_PARAMS;
      for (const account of accounts.values()) {
        if (account.passwordHash === undefined) continue;
        try {
          params = parsePasswordHash(account.passwordHash).params;
          break;
        } catch {
          // unreachable for loaded accounts; keep looking
        }
      }
      dummy = dummyPasswordHash(params);
      dummies.set(accounts, dummy);
    }
    return dummy;
  }

  /** Loggable form of a user name: a name outside the charset may be a password typed in the wrong box. */
  function who(user: string): { user?: string; userValid: boolean } {
    return isValidUserName(user) ? { user, userValid: true } : { userValid: false };
  }

  /** A directory lookup; a name the directory cannot be asked about (`.` or `..`, which a URL would resolve away) is absent. */
  async function lookUp(user: string, password: string | undefined, meta: AuthAttemptMeta): Promise<Lookup> {
    if (userDirectory === undefined || /^\.+$/.test(user)) return { kind: 'absent' };
    const answer = await userDirectory.lookup({ user, password, remoteAddress: meta.remoteAddress, signal: meta.signal });
    if (answer.kind === 'unavailable') {
      logger.warn(
        { event: 'directory_unavailable', user, reason: answer.reason, remoteAddress: meta.remoteAddress },
        'user directory lookup failed; login refused',
      );
    }
    return answer;
  }

  function rootOf(home: HomeSource): { rootCap: string } | { home: string } {
    return home.kind === 'cap' ? { rootCap: home.cap } : { home: home.name };
  }

  async function checkDirectoryPassword(user: string, password: string, meta: AuthAttemptMeta): Promise<LoginResult | null> {
    if (userDirectory!.passwordChecking) {
      const answer = await lookUp(user, password, meta);
      if (answer.kind === 'found' && answer.record.passwordAccepted === true) {
        return accepted({ user, method: 'password', appendOnly: false, ...rootOf(answer.record.home) }, meta);
      }
      return refused(user, meta, answer.kind === 'unavailable' ? 'user directory unavailable' : 'unknown user or wrong password');
    }
    const answer = await lookUp(user, undefined, meta);
    if (answer.kind !== 'found') return refused(user, meta, answer.kind === 'unavailable' ? 'user directory unavailable' : 'unknown user');
    const record: UserRecord = answer.record;
    const hash: ParsedCryptHash | undefined = record.passwordHash;
    if (hash === undefined) return refused(user, meta, 'no usable password hash for this user');
    const matched = await limiter.run(() => crypt!.verify(password, hash));
    if (matched === undefined) {
      logger.warn({ ...who(user), remoteAddress: meta.remoteAddress }, 'too many password checks queued; login denied');
      return null;
    }
    if (!matched) return refused(user, meta, 'wrong password');
    return accepted({ user, method: 'password', appendOnly: false, ...rootOf(record.home) }, meta);
  }

  async function checkPassword(user: string, password: string, meta: AuthAttemptMeta = {}): Promise<LoginResult | null> {
    const validUser = isValidUserName(user);
    const account = validUser ? accountsFile?.get(user) : undefined;
    if (validUser && account === undefined && userDirectory !== undefined) return checkDirectoryPassword(user, password, meta);
    let hash: ParsedPasswordHash | undefined;
    if (account?.passwordHash !== undefined) {
      try {
        hash = parsePasswordHash(account.passwordHash);
      } catch {
        hash = undefined; // unreachable: the file only loads hashes that parse
      }
    }
    const matched = await limiter.run(() => verify(password, hash ?? dummyFor(accountsFile?.accounts)));
    if (matched === undefined) {
      logger.warn({ ...who(user), remoteAddress: meta.remoteAddress }, 'too many password checks queued; login denied');
      return null;
    }
    if (account !== undefined) {
      if (matched && hash !== undefined)
        return accepted(
          { user, rootCap: account.rootCap, method: 'password', appendOnly: account.appendOnly, ...noSnapshotsOf(account) },
          meta,
        );
      return refused(user, meta, hash === undefined ? 'no password for this user' : 'wrong password');
    }
    if (validUser && accountServer !== undefined) {
      const rootCap = await accountServer.authenticate(user, password);
      if (rootCap !== null) return accepted({ user, rootCap, method: 'password', appendOnly: false }, meta);
    }
    return refused(user, meta, 'unknown user or wrong password');
  }

  function accepted(result: LoginResult, meta: AuthAttemptMeta): LoginResult {
    logger.info(
      {
        user: result.user,
        method: result.method,
        keyFingerprint: result.keyFingerprint,
        appendOnly: result.appendOnly,
        remoteAddress: meta.remoteAddress,
      },
      'password accepted',
    );
    return result;
  }

  function refused(user: string, meta: AuthAttemptMeta, reason: string): null {
    logger.info({ ...who(user), method: 'password', remoteAddress: meta.remoteAddress, reason }, 'password refused');
    return null;
  }

  return {
    async acceptsPublicKey(user, key, meta = {}) {
      try {
        const account = isValidUserName(user) ? accountsFile?.get(user) : undefined;
        const fingerprint = keyFingerprint(key.data);
        if (account === undefined && userDirectory !== undefined && isValidUserName(user)) {
          const answer = await lookUp(user, undefined, meta);
          const record = answer.kind === 'found' ? answer.record : undefined;
          if (record === undefined || !record.keys.some((k) => keyMatches(k, key))) {
            logger.debug(
              { ...who(user), keyFingerprint: fingerprint, remoteAddress: meta.remoteAddress },
              'public key not listed for user',
            );
            return null;
          }
          return { user, method: 'publickey', keyFingerprint: fingerprint, appendOnly: false, ...rootOf(record.home) };
        }
        const match = account?.keys.find((k) => keyMatches(k, key));
        if (account === undefined || match === undefined) {
          logger.debug({ ...who(user), keyFingerprint: fingerprint, remoteAddress: meta.remoteAddress }, 'public key not listed for user');
          return null;
        }
        return {
          user,
          rootCap: account.rootCap,
          method: 'publickey',
          keyFingerprint: fingerprint,
          appendOnly: account.appendOnly,
          ...noSnapshotsOf(account),
        };
      } catch (err) {
        logger.error({ ...who(user), err: (err as Error).name }, 'public key lookup failed');
        return null;
      }
    },

    acceptsRsaSha1: opts.allowRsaSha1 === true,

    verifyPublicKeySignature(key, blob, signature, hashAlgo) {
      return verifySignature(key, blob, signature, hashAlgo, opts.allowRsaSha1 === true);
    },

    async checkPassword(user, password, meta) {
      try {
        return await checkPassword(user, password, meta);
      } catch (err) {
        logger.error({ ...who(user), err: (err as Error).name }, 'password check failed');
        return null;
      }
    },

    async openRoot(result, meta = {}) {
      if ('rootCap' in result) return result.rootCap;
      if (homes === undefined) {
        logger.error({ event: 'home_unavailable', user: result.user }, 'no home store configured; login refused');
        return null;
      }
      let opening: HomeOpening;
      try {
        opening = await homes.openOrCreate(result.home, { signal: meta.signal });
      } catch (err) {
        logger.error(
          { event: 'home_unavailable', user: result.user, err: (err as Error)?.name, remoteAddress: meta.remoteAddress },
          'home could not be opened or created; login refused',
        );
        return null;
      }
      if (opening.kind === 'revoked') {
        logger.warn({ event: 'home_revoked', user: result.user, remoteAddress: meta.remoteAddress }, 'home revoked; login refused');
        return null;
      }
      if (opening.created) logger.info({ event: 'home_created', user: result.user }, 'home created on first login');
      return opening.cap;
    },

    knowsUser(user) {
      if (isValidUserName(user) && accountsFile?.get(user) !== undefined) return true;
      if (userDirectory === undefined) return false;
      const knowledge = userDirectory.knowledge(user);
      return knowledge === 'known' ? true : knowledge === 'unavailable' ? undefined : false;
    },

    async close() {
      await Promise.all([
        accountsFile?.close(),
        accountServer?.close(),
        userDirectory?.close(),
        opts.cryptVerifier === undefined ? crypt?.close() : undefined,
      ]);
    },
  };
}
