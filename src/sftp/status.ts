import type { Logger } from '../log.js';
import { STATUS, type StatusCode } from './protocol/constants.js';

/**
 * The one place where an error becomes an SFTP status code and message.
 *
 * Messages are fixed strings chosen here: never an error's own message, so a
 * cap, a key, a path of another user or a server file name cannot reach a
 * client whatever a lower layer puts in its messages.
 *
 * Client quirks (SFTP v3 has only nine codes):
 * - "already exists" is FAILURE: v3 has no FILE_ALREADY_EXISTS (added in v5).
 *   OpenSSH's sftp prints "Failure"; sshfs turns FAILURE into EPERM, so
 *   `mkdir` of an existing name on an sshfs mount says "Operation not
 *   permitted", not "File exists". OpenSSH's own server behaves the same.
 * - A non-empty rmdir, a rename onto an existing name and a remove of a
 *   directory are FAILURE too, as from OpenSSH's server (errno_to_portable
 *   maps everything but ENOENT/ENOTDIR/EACCES/EPERM/EINVAL/ENOSYS to FAILURE).
 * - A walk through a file (ENOTDIR) is NO_SUCH_FILE, as from OpenSSH.
 * - Malformed input (a name too long, a bad argument) is BAD_MESSAGE, as
 *   OpenSSH answers ENAMETOOLONG and EINVAL; a name that arrived as invalid
 *   UTF-8 is refused earlier as NO_SUCH_FILE (see paths.ts).
 * - Too many symbolic links (a loop) is FAILURE: OpenSSH's server maps
 *   ELOOP to FAILURE too. A target that is not UTF-8 names nothing
 *   (NO_SUCH_FILE), like such a path; READLINK of a name that is not a link
 *   is BAD_MESSAGE (EINVAL).
 * - OpenSSH's sftp shows only its own text for a code, not our message; the
 *   message is for other clients and logs.
 */

/** A failure whose status the frontend chose itself (bad handle, EOF, too many handles). */
export class SftpStatusError extends Error {
  constructor(
    readonly status: StatusCode,
    message: string,
  ) {
    super(message);
    this.name = 'SftpStatusError';
  }
}

export interface MappedStatus {
  code: StatusCode;
  message: string;
}

const BY_NAME: ReadonlyMap<string, MappedStatus> = new Map(
  Object.entries({
    NotFoundError: { code: STATUS.NO_SUCH_FILE, message: 'no such file or directory' },
    NotADirectoryError: { code: STATUS.NO_SUCH_FILE, message: 'not a directory' },
    PermissionError: { code: STATUS.PERMISSION_DENIED, message: 'permission denied' },
    CapParseError: { code: STATUS.NO_SUCH_FILE, message: 'no such file or directory' },
    AlreadyExistsError: { code: STATUS.FAILURE, message: 'already exists' },
    NotEmptyError: { code: STATUS.FAILURE, message: 'directory not empty' },
    IsADirectoryError: { code: STATUS.FAILURE, message: 'is a directory' },
    IntegrityError: { code: STATUS.FAILURE, message: 'integrity check failed' },
    TooManyLinksError: { code: STATUS.FAILURE, message: 'too many levels of symbolic links' },
    QuotaExceededError: { code: STATUS.FAILURE, message: 'quota exceeded' },
    InvalidInputError: { code: STATUS.BAD_MESSAGE, message: 'invalid argument' },
    UnsupportedError: { code: STATUS.OP_UNSUPPORTED, message: 'operation not supported' },
    ConflictError: { code: STATUS.FAILURE, message: 'concurrent update, try again' },
    TransientError: { code: STATUS.FAILURE, message: 'storage temporarily unavailable, try again' },
    AbortError: { code: STATUS.FAILURE, message: 'operation aborted' },
  } satisfies Record<string, MappedStatus>),
);

const INTERNAL: MappedStatus = { code: STATUS.FAILURE, message: 'internal error' };

/**
 * Maps any thrown value to a status. Errors are matched by `name` (what tests
 * and layers agree on), walking up the prototype chain so subclasses such as
 * CapParseError map like their parent unless listed. Anything unexpected is
 * FAILURE "internal error" and logged (name and stack, which by the
 * src/errors.ts contract hold no secrets).
 */
export function toSftpStatus(err: unknown, logger: Logger, op: string): MappedStatus {
  if (err instanceof SftpStatusError) return { code: err.status, message: err.message };
  const own = err instanceof Error ? BY_NAME.get(err.name) : undefined;
  // The client shows only "Failure"; the operator needs to see that the
  // storage (or a directory under heavy contention) is the cause. The
  // message is ours (src/errors.ts: never a cap).
  if (own !== undefined && err instanceof Error && err.name === 'TransientError')
    logger.warn({ op, err: err.message }, 'SFTP request failed: storage temporarily unavailable');
  if (own !== undefined) return own;
  for (let proto = err; proto !== null && typeof proto === 'object'; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    const found = name !== undefined ? BY_NAME.get(name) : undefined;
    if (found !== undefined) return found;
  }
  logger.error({ op, err }, 'unexpected error in SFTP request');
  return INTERNAL;
}
