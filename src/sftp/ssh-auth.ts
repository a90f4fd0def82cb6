import type { AuthContext } from 'ssh2';
import type { Authenticator, LoginResult } from '../auth/authenticator.js';
import { parseDirectoryCap, type DirectoryCap } from '../cap/index.js';
import type { Defender, FailureKind } from '../defender/index.js';
import type { Logger } from '../log.js';
import type { GatewayStats } from './stats.js';

/**
 * SSH user authentication, decided by the Authenticator.
 *
 * - publickey without a signature (the client asks "would you take this
 *   key?"): answered from the accounts file alone; with a signature: the
 *   signature over the session blob is verified, then the key is looked up.
 * - password: checkPassword (one scrypt, same cost for an unknown user).
 * - keyboard-interactive is refused, not mapped to password: every client
 *   that speaks keyboard-interactive also speaks password (OpenSSH falls back
 *   on its own), one code path is easier to reason about and to rate-limit,
 *   and we never advertise it.
 * - none, hostbased: refused with the allowed methods list.
 *
 * Logs: a refusal of a credential (a key not listed, a bad signature, a
 * wrong password or unknown user) logs exactly
 *   warn { event: 'auth_failed', remoteAddress, remotePort, user, method, reason } 'authentication failed'
 * (a stable line for fail2ban; the user name is the one the client sent and
 * is logged as is, like sshd's "Invalid user" line). `reason` says why, for
 * the operator (the client is told nothing more than "denied"): `refused
 * name` (on the defender's refused list), `unknown user`, `wrong password`,
 * `wrong key` (a key not listed for that user, or a bad signature), `RSA
 * signature over SHA-1` (a listed RSA key, signed the way only old clients
 * do: [sftpd] rsa_sha1), `bad root cap`, `internal error`. A success logs
 *   info { event: 'login', remoteAddress, user, method, keyFingerprint? } 'login'.
 * Never a password, never a cap. `none` and keyboard-interactive refusals are
 * not failures (every client starts with `none`).
 *
 * After MAX_AUTH_FAILURES refused credentials the connection is dropped (as
 * sshd's MaxAuthTries), bounding the guesses one connection can make.
 *
 * With a defender (src/defender):
 * - every attempt first checks the address's ban (a ban made by another
 *   connection ends this one too);
 * - a user name on the refused list (root, admin, …) is refused for any
 *   credential without asking the Authenticator, and scores `refused_user`;
 * - a refused password or signature scores `unknown_user` or
 *   `wrong_credential`. Which one is decided by `isKnownUser` *after* the
 *   Authenticator's constant-time check has answered, so the answer and its
 *   timing stay the same for known and unknown users; only the score differs;
 * - a key merely offered (no signature) and not listed scores only for an
 *   unknown user: a real client offers every key it has, and a key cannot be
 *   guessed anyway;
 * - each scored refusal (and each refused password) is answered after
 *   `failureDelayMs`, a timer, so other clients are not held up.
 * A login past the account's session limit (`mayLogin` false) is refused
 * without scoring and the connection closed (`onRefused`).
 *
 * Users of a central user directory (src/users): the lookup happens inside
 * the Authenticator, after the ban and refused-name checks above, and is
 * abandoned when the connection ends (`signal`). A refusal while the
 * directory could not answer (`isKnownUser` undefined) is not a failed guess:
 * it scores nothing and logs `auth_unavailable`, not `auth_failed`, so an
 * outage does not get users banned by the defender or fail2ban. Their home
 * is opened (or created, on first login) by Authenticator.openRoot only after
 * the signature or password is proven; if that fails the login is refused
 * unscored and the connection closed.
 */

export const ALLOWED_METHODS: ('publickey' | 'password')[] = ['publickey', 'password'];
export const MAX_AUTH_FAILURES = 10;
const MAX_LOGGED_USER = 64;

export interface Login {
  result: LoginResult;
  root: DirectoryCap;
}

export interface AuthHandlerOptions {
  authenticator: Authenticator;
  logger: Logger;
  stats: GatewayStats;
  remoteAddress: string;
  remotePort: number;
  /** Called once, before ssh2 tells the client it is in. */
  onLogin(login: Login): void;
  /** Called when the connection used up its attempts. */
  onTooManyFailures(): void;
  defender?: Defender | undefined;
  /** true/false: the user has an account or not; undefined: the user directory could not say (unscored refusal). */
  isKnownUser?(user: string): boolean | undefined;
  failureDelayMs?: number;
  /** Takes a session slot for the user; false refuses the login (limit reached). */
  mayLogin?(user: string): boolean;
  /** Ends the connection (banned, or a limit reached). */
  onRefused?(reason: string): void;
  /** Aborted when the connection ends: lookups made for it stop waiting. */
  signal?: AbortSignal;
}

export function createAuthHandler(opts: AuthHandlerOptions): (ctx: AuthContext) => void {
  const { authenticator, logger, stats, remoteAddress, remotePort } = opts;
  let failures = 0;
  let decided = false;

  const delayMs = opts.failureDelayMs ?? 0;
  const defender = opts.defender;

  /** Scores a failure and waits out the failure delay; true if the address is now banned. */
  const penalize = async (kind: FailureKind | undefined, delay: boolean): Promise<boolean> => {
    const banned = kind !== undefined && defender !== undefined && (await defender.recordFailure(remoteAddress, kind));
    if (delay && delayMs > 0 && !banned) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return banned;
  };
  /** true, false, or undefined when the user directory could not say. */
  const known = (user: string): boolean | undefined => (opts.isKnownUser === undefined ? true : opts.isKnownUser(user));

  /** Why a credential was refused, as logged (never the credential itself). */
  type Reason =
    | 'refused name'
    | 'unknown user'
    | 'wrong password'
    | 'wrong key'
    | 'RSA signature over SHA-1'
    | 'bad root cap'
    | 'internal error'
    | 'user directory unavailable';

  const refuse = (ctx: AuthContext, reason: Reason | undefined, unavailable = false): void => {
    if (reason !== undefined) {
      failures++;
      stats.loginsFailed++;
      // As sent (sshd logs invalid names too), but bounded: a name is not a place to store megabytes.
      const user = ctx.username.length > MAX_LOGGED_USER ? ctx.username.slice(0, MAX_LOGGED_USER) + '…' : ctx.username;
      if (unavailable) {
        logger.warn(
          { event: 'auth_unavailable', remoteAddress, remotePort, user, method: ctx.method, reason },
          'authentication not possible now',
        );
      } else {
        logger.warn({ event: 'auth_failed', remoteAddress, remotePort, user, method: ctx.method, reason }, 'authentication failed');
      }
    }
    ctx.reject(ALLOWED_METHODS);
    if (failures >= MAX_AUTH_FAILURES) opts.onTooManyFailures();
  };

  const accept = async (ctx: AuthContext, result: LoginResult): Promise<void> => {
    const rootCap = await authenticator.openRoot(result, { remoteAddress, signal: opts.signal });
    if (rootCap === null) {
      // Logged by the authenticator (revoked home, slot store unreachable); not the client's fault, not scored.
      decided = true;
      ctx.reject(ALLOWED_METHODS);
      opts.onRefused?.('no root for this login');
      return;
    }
    let root: DirectoryCap;
    try {
      root = parseDirectoryCap(rootCap);
    } catch {
      logger.error({ event: 'bad_root_cap', user: result.user }, "account's root cap is not a directory cap; login refused");
      refuse(ctx, 'bad root cap');
      return;
    }
    if (opts.mayLogin !== undefined && !opts.mayLogin(result.user)) {
      logger.warn(
        { event: 'limit_reached', limit: 'max_sessions_per_account', remoteAddress, user: result.user },
        'login refused: too many sessions for this account',
      );
      decided = true;
      ctx.reject(ALLOWED_METHODS);
      opts.onRefused?.('too many sessions for this account');
      return;
    }
    opts.onLogin({ result, root }); // may throw (no convergence secret): then this is a refusal
    decided = true;
    stats.loginsOk++;
    logger.info(
      {
        event: 'login',
        remoteAddress,
        user: result.user,
        method: result.method,
        keyFingerprint: result.keyFingerprint,
        appendOnly: result.appendOnly ? true : undefined, // only on append-only logins (undefined is left out)
      },
      'login',
    );
    ctx.accept();
  };

  return (ctx) => {
    if (decided) return ctx.reject(ALLOWED_METHODS);
    const meta = { remoteAddress, signal: opts.signal };
    /** A counted refusal after scoring (and the delay); a ban it causes ends the connection. */
    const fail = async (kind: FailureKind | undefined, delay: boolean, reason: Reason, unavailable = false): Promise<void> => {
      const banned = await penalize(kind, delay);
      refuse(ctx, reason, unavailable);
      if (banned) opts.onRefused?.('address banned');
    };
    /** The refusal of a credential: scored by whether the user exists, unscored when the user directory could not say. */
    const refuseCredential = (user: string, whenKnown: FailureKind | undefined, delay: boolean, reasonWhenKnown: Reason): Promise<void> => {
      const k = known(user);
      if (k === undefined) return fail(undefined, delay, 'user directory unavailable', true);
      return fail(k ? whenKnown : 'unknown_user', delay, k ? reasonWhenKnown : 'unknown user');
    };
    const decide = async (): Promise<void> => {
      if (defender?.isBanned(remoteAddress) === true) {
        ctx.reject(ALLOWED_METHODS);
        opts.onRefused?.('address banned');
        return;
      }
      const credential = ctx.method === 'publickey' || ctx.method === 'password';
      if (credential && defender?.isRefusedUser(ctx.username) === true) return fail('refused_user', true, 'refused name');
      switch (ctx.method) {
        case 'publickey': {
          const result = await authenticator.acceptsPublicKey(ctx.username, ctx.key, meta);
          const query = ctx.signature === undefined || ctx.blob === undefined;
          if (result === null) return refuseCredential(ctx.username, query ? undefined : 'wrong_credential', !query, 'wrong key');
          if (ctx.signature === undefined || ctx.blob === undefined) {
            // A query: say yes (PK_OK); the client then signs and asks again.
            ctx.accept();
            return;
          }
          if (!authenticator.verifyPublicKeySignature(ctx.key, ctx.blob, ctx.signature, ctx.hashAlgo)) {
            // A listed RSA key signing with SHA-1 (`ssh-rsa`): refused unless [sftpd] rsa_sha1; say so, the key is right.
            const sha1 = ctx.key.algo === 'ssh-rsa' && ctx.hashAlgo === undefined && !authenticator.acceptsRsaSha1;
            return fail('wrong_credential', true, sha1 ? 'RSA signature over SHA-1' : 'wrong key');
          }
          return accept(ctx, result);
        }
        case 'password': {
          const result = await authenticator.checkPassword(ctx.username, ctx.password, meta);
          if (result === null) return refuseCredential(ctx.username, 'wrong_credential', true, 'wrong password');
          return accept(ctx, result);
        }
        default:
          return refuse(ctx, undefined);
      }
    };
    decide().catch((err: unknown) => {
      logger.error({ err: (err as Error)?.name }, 'authentication error');
      refuse(ctx, 'internal error');
    });
  };
}
