import type { AuthContext } from 'ssh2';
import type { Authenticator, LoginResult } from '../auth/authenticator.js';
import { parseDirectoryCap, type DirectoryCap } from '../cap/index.js';
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
 *   warn { event: 'auth_failed', remoteAddress, remotePort, user, method } 'authentication failed'
 * (a stable line for fail2ban; the user name is the one the client sent and
 * is logged as is, like sshd's "Invalid user" line); a success logs
 *   info { event: 'login', remoteAddress, user, method, keyFingerprint? } 'login'.
 * Never a password, never a cap. `none` and keyboard-interactive refusals are
 * not failures (every client starts with `none`).
 *
 * After MAX_AUTH_FAILURES refused credentials the connection is dropped (as
 * sshd's MaxAuthTries), bounding the guesses one connection can make.
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
}

export function createAuthHandler(opts: AuthHandlerOptions): (ctx: AuthContext) => void {
  const { authenticator, logger, stats, remoteAddress, remotePort } = opts;
  let failures = 0;
  let decided = false;

  const refuse = (ctx: AuthContext, counted: boolean): void => {
    if (counted) {
      failures++;
      stats.loginsFailed++;
      // As sent (sshd logs invalid names too), but bounded: a name is not a place to store megabytes.
      const user = ctx.username.length > MAX_LOGGED_USER ? ctx.username.slice(0, MAX_LOGGED_USER) + '…' : ctx.username;
      logger.warn({ event: 'auth_failed', remoteAddress, remotePort, user, method: ctx.method }, 'authentication failed');
    }
    ctx.reject(ALLOWED_METHODS);
    if (failures >= MAX_AUTH_FAILURES) opts.onTooManyFailures();
  };

  const accept = (ctx: AuthContext, result: LoginResult): void => {
    let root: DirectoryCap;
    try {
      root = parseDirectoryCap(result.rootCap);
    } catch {
      logger.error({ event: 'bad_root_cap', user: result.user }, "account's root cap is not a directory cap; login refused");
      refuse(ctx, true);
      return;
    }
    opts.onLogin({ result, root }); // may throw (no convergence secret): then this is a refusal
    decided = true;
    stats.loginsOk++;
    logger.info({ event: 'login', remoteAddress, user: result.user, method: result.method, keyFingerprint: result.keyFingerprint }, 'login');
    ctx.accept();
  };

  return (ctx) => {
    if (decided) return ctx.reject(ALLOWED_METHODS);
    const meta = { remoteAddress };
    const decide = async (): Promise<void> => {
      switch (ctx.method) {
        case 'publickey': {
          const result = await authenticator.acceptsPublicKey(ctx.username, ctx.key, meta);
          if (result === null) return refuse(ctx, true);
          if (ctx.signature === undefined || ctx.blob === undefined) {
            // A query: say yes (PK_OK); the client then signs and asks again.
            ctx.accept();
            return;
          }
          if (!authenticator.verifyPublicKeySignature(ctx.key, ctx.blob, ctx.signature, ctx.hashAlgo)) return refuse(ctx, true);
          return accept(ctx, result);
        }
        case 'password': {
          const result = await authenticator.checkPassword(ctx.username, ctx.password, meta);
          if (result === null) return refuse(ctx, true);
          return accept(ctx, result);
        }
        default:
          return refuse(ctx, false);
      }
    };
    decide().catch((err: unknown) => {
      logger.error({ err: (err as Error)?.name }, 'authentication error');
      refuse(ctx, true);
    });
  };
}
