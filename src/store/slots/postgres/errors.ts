import { InvalidInputError, TransientError, isCapstanError } from '../../../errors.js';

/**
 * SQLSTATE classes and codes after which the same statement may succeed if
 * retried unchanged: the connection dropped or could not be made (08), the
 * server is shutting down or starting (57P01..57P03), it ran out of
 * resources (53), or a transaction lost a serialization race (40001, 40P01).
 */
const TRANSIENT_SQLSTATE_CLASSES = ['08', '53'];
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '40001', '40P01', '55P03']);

/**
 * SQLSTATEs that mean the configuration is wrong, not the moment: bad
 * credentials (28), no such database (3D000), no permission (42501). Retrying
 * will not help; the operator must fix slots.postgres.* .
 */
const CONFIG_SQLSTATE_CLASSES = ['28'];
const CONFIG_SQLSTATES = new Set(['3D000', '42501']);

function isSqlState(code: unknown): code is string {
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/**
 * Maps what `pg` throws to capstan's errors. A server error whose SQLSTATE
 * says "try again" and every error from below the protocol (a refused or
 * reset socket, a DNS failure, the pool's connect timeout, "Connection
 * terminated") is TransientError. Any other server error is a bug or a
 * misconfiguration (permission denied, no such table) and is rethrown as it
 * is, so it surfaces instead of being retried forever; one that points at the
 * configuration (credentials, database, rights) is InvalidInputError.
 *
 * The message names only the SQLSTATE or errno code: pg's messages are safe
 * (they never carry the password), but a code is all an operator needs and
 * all a test should match.
 */
export function classifyPostgresError(err: unknown, what: string, component = 'postgres slot store'): unknown {
  if (isCapstanError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (isSqlState(code)) {
    if (TRANSIENT_SQLSTATE_CLASSES.includes(code.slice(0, 2)) || TRANSIENT_SQLSTATES.has(code)) {
      return new TransientError(`${component}: ${what} failed (SQLSTATE ${code})`, { cause: err });
    }
    if (CONFIG_SQLSTATE_CLASSES.includes(code.slice(0, 2)) || CONFIG_SQLSTATES.has(code)) {
      return new InvalidInputError(
        `${component}: ${what} refused (SQLSTATE ${code}: check [storage] slots.postgres.url, the password and the role's rights)`,
        { cause: err },
      );
    }
    return err;
  }
  if (err instanceof Error && err.message.startsWith('SASL:')) {
    // pg's own check before SCRAM: no password was found anywhere.
    return new InvalidInputError(`${component}: ${what} refused (no usable password: set it in the URL, the password file or PGPASSWORD)`, {
      cause: err,
    });
  }
  if (err instanceof Error) {
    const reason = typeof code === 'string' ? code : 'connection failed';
    return new TransientError(`${component}: ${what} failed (${reason})`, { cause: err });
  }
  return err;
}
