/**
 * capstan's error classes, grouped by what the caller must do about them.
 *
 * Every layer throws these and only these for domain failures; tests assert on
 * `name` (or `code`), never on message text. Messages MUST NOT contain a
 * capability, a key, or plaintext: they are logged and some reach SFTP clients
 * (through the single mapping in src/sftp/status.ts).
 */

export abstract class CapstanError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The thing asked for does not exist: a chunk address, a slot, a directory entry. */
export class NotFoundError extends CapstanError {
  static readonly code = 'ERR_NOT_FOUND';
  readonly code = NotFoundError.code;

  /**
   * One without a stack trace, for an answer on the normal path rather than
   * a fault: SFTP clients STAT a name before every put, and capturing the
   * stack was about 12 µs of each such "no such file" (which the SFTP layer
   * only maps to a status).
   */
  static answer(message: string): NotFoundError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new NotFoundError(message);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/**
 * Bytes read back do not match what their address or signature promises:
 * tampering, bit rot, a torn write, a truncated object. One class, and no
 * detail about the bytes; `storageIndex` names the object (its public
 * address or storage index, never a key) so an operator can find it.
 */
export class IntegrityError extends CapstanError {
  static readonly code = 'ERR_INTEGRITY';
  readonly code = IntegrityError.code;
  constructor(
    readonly storageIndex: string,
    what = 'object',
  ) {
    super(`integrity check failed for ${what} ${storageIndex}`);
  }
}

/**
 * A directory removed by rmdir: its slot holds a sealed version
 * (docs/spec/slots.md). For every caller it is "not found"; the subclass
 * lets `capstan check` tell an interrupted rmdir from a missing slot.
 */
export class DirectoryRemovedError extends NotFoundError {}

/** The capability held does not allow this: a read cap asked to write, a no-write entry. */
export class PermissionError extends CapstanError {
  static readonly code = 'ERR_PERMISSION';
  readonly code = PermissionError.code;
}

/** A compare-and-swap lost: the slot's sequence number moved on. The caller re-reads and retries. */
export class ConflictError extends CapstanError {
  static readonly code = 'ERR_CONFLICT';
  readonly code = ConflictError.code;
}

/** A failure that may succeed if retried unchanged: a timeout, a reset, a 5xx. */
export class TransientError extends CapstanError {
  static readonly code = 'ERR_TRANSIENT';
  readonly code = TransientError.code;
}

/** A name is already linked in a directory and overwrite was not asked for. */
export class AlreadyExistsError extends CapstanError {
  static readonly code = 'ERR_EXISTS';
  readonly code = AlreadyExistsError.code;
}

/** rmdir of a directory that still has entries. */
export class NotEmptyError extends CapstanError {
  static readonly code = 'ERR_NOT_EMPTY';
  readonly code = NotEmptyError.code;
}

/** A path component names a file where a directory is needed, or the reverse. */
export class NotADirectoryError extends CapstanError {
  static readonly code = 'ERR_NOT_A_DIRECTORY';
  readonly code = NotADirectoryError.code;
}
export class IsADirectoryError extends CapstanError {
  static readonly code = 'ERR_IS_A_DIRECTORY';
  readonly code = IsADirectoryError.code;
}

/** Malformed input from outside: a cap string, a name, a path, a config line, a packet. */
export class InvalidInputError extends CapstanError {
  static readonly code = 'ERR_INVALID_INPUT';
  readonly code = InvalidInputError.code;
}

/** The operation is valid but capstan does not do it (symlinks, say). */
export class UnsupportedError extends CapstanError {
  static readonly code = 'ERR_UNSUPPORTED';
  readonly code = UnsupportedError.code;
}

/** A path went through more symbolic links than the bound allows (a loop, or a chain too long): ELOOP. */
export class TooManyLinksError extends CapstanError {
  static readonly code = 'ERR_TOO_MANY_LINKS';
  readonly code = TooManyLinksError.code;
}

/** An account's quota would be exceeded. */
export class QuotaExceededError extends CapstanError {
  static readonly code = 'ERR_QUOTA';
  readonly code = QuotaExceededError.code;
}

/** Cancelled through an AbortSignal. */
export class AbortError extends CapstanError {
  static readonly code = 'ABORT_ERR';
  readonly code = AbortError.code;
  constructor(message = 'the operation was aborted') {
    super(message);
  }
}

export function isCapstanError(err: unknown): err is CapstanError {
  return err instanceof CapstanError;
}

/** Options every async store and tree method accepts. */
export interface AbortOptions {
  signal?: AbortSignal | undefined;
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new AbortError();
}

/**
 * Errors that prove a change made no slot update: refusals decided before
 * or inside the update (the name exists, the directory is not empty, …) and
 * a compare-and-swap that lost every attempt. Anything else (a store
 * failing part way, an abort, an unknown error) may have come after the
 * update landed, so the check decides.
 */
export function provesNothingCommitted(err: unknown): boolean {
  return (
    err instanceof NotFoundError ||
    err instanceof AlreadyExistsError ||
    err instanceof NotEmptyError ||
    err instanceof NotADirectoryError ||
    err instanceof IsADirectoryError ||
    err instanceof PermissionError ||
    err instanceof InvalidInputError ||
    err instanceof ConflictError ||
    err instanceof QuotaExceededError
  );
}
