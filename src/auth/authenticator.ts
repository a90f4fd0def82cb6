import type { Logger } from '../log.js';
import { isValidUserName } from './account-line.js';
import type { Account } from './accounts-file.js';
import { HashLimiter } from './hash-limiter.js';
import { DEFAULT_SCRYPT_PARAMS, dummyPasswordHash, parsePasswordHash, verifyPassword, type ParsedPasswordHash } from './password-hash.js';
import { keyFingerprint, keyMatches, verifySignature } from './ssh-key.js';

export interface LoginResult {
  user: string;
  rootCap: string;
  method: 'publickey' | 'password';
  keyFingerprint?: string;
}

/** Where an attempt comes from, for the log only. */
export interface AuthAttemptMeta {
  remoteAddress?: string;
}

/**
 * What the SFTP frontend asks. None of these methods throws: every failure
 * (unknown user, wrong secret, account server down) is `null` / `false`.
 */
export interface Authenticator {
  /** Does this user have a key line with this public key? (no signature check here; ssh2 does that with the signature we verify) */
  acceptsPublicKey(user: string, key: { algo: string; data: Buffer }, meta?: AuthAttemptMeta): Promise<LoginResult | null>;
  /** verify a signature for publickey auth: returns true if `signature` over `blob` verifies with `key` */
  verifyPublicKeySignature(key: { algo: string; data: Buffer }, blob: Buffer, signature: Buffer, hashAlgo?: string): boolean;
  /**
   * MUST take the same time and give the same answer for an unknown user, a
   * user without a password and a wrong password: each costs one scrypt.
   */
  checkPassword(user: string, password: string, meta?: AuthAttemptMeta): Promise<LoginResult | null>;
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

export interface AuthenticatorOptions {
  accountsFile?: AccountSource;
  accountServer?: PasswordAuthority;
  logger: Logger;
  /** Accept RSA signatures over SHA-1 (`ssh-rsa`), for clients older than OpenSSH 7.2. Off by default. */
  allowRsaSha1?: boolean;
  /** Password checks running at once / waiting (see HashLimiter). */
  hashConcurrency?: number;
  maxQueuedHashes?: number;
  /** The scrypt check; replaceable so tests can count calls. */
  verifyPassword?: (password: string, hash: ParsedPasswordHash) => Promise<boolean>;
}

/**
 * The authenticator: accounts file first, then the account server.
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
 */
export function createAuthenticator(opts: AuthenticatorOptions): Authenticator {
  const { accountsFile, accountServer } = opts;
  const logger = opts.logger.child({ component: 'auth' });
  const limiter = new HashLimiter(opts.hashConcurrency ?? 4, opts.maxQueuedHashes ?? 256);
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

  async function checkPassword(user: string, password: string, meta: AuthAttemptMeta = {}): Promise<LoginResult | null> {
    const validUser = isValidUserName(user);
    const account = validUser ? accountsFile?.get(user) : undefined;
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
      if (matched && hash !== undefined) return accepted({ user, rootCap: account.rootCap, method: 'password' }, meta);
      return refused(user, meta, hash === undefined ? 'no password for this user' : 'wrong password');
    }
    if (validUser && accountServer !== undefined) {
      const rootCap = await accountServer.authenticate(user, password);
      if (rootCap !== null) return accepted({ user, rootCap, method: 'password' }, meta);
    }
    return refused(user, meta, 'unknown user or wrong password');
  }

  function accepted(result: LoginResult, meta: AuthAttemptMeta): LoginResult {
    logger.info(
      { user: result.user, method: result.method, keyFingerprint: result.keyFingerprint, remoteAddress: meta.remoteAddress },
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
        const match = account?.keys.find((k) => keyMatches(k, key));
        const fingerprint = keyFingerprint(key.data);
        if (account === undefined || match === undefined) {
          logger.debug({ ...who(user), keyFingerprint: fingerprint, remoteAddress: meta.remoteAddress }, 'public key not listed for user');
          return null;
        }
        return { user, rootCap: account.rootCap, method: 'publickey', keyFingerprint: fingerprint };
      } catch (err) {
        logger.error({ ...who(user), err: (err as Error).name }, 'public key lookup failed');
        return null;
      }
    },

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

    async close() {
      await Promise.all([accountsFile?.close(), accountServer?.close()]);
    },
  };
}
