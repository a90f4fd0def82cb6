import { isCapstanError } from '../errors.js';

/**
 * How the CLI reports failure: one line on stderr, `capstan: MESSAGE`, and an
 * exit status (1: the operation failed; 2: the command line was wrong). A
 * stack trace only with --debug. Caps never appear: every message printed
 * goes through redactCaps, because some come from places (yargs echoing an
 * unexpected argument, a library error) that do not know what a cap is.
 */

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** The command line itself is wrong: a missing argument, a bad flag value. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The command ran and found problems (check), already reported; exit non-zero without another message. */
export class ReportedFailure extends Error {
  override name = 'ReportedFailure';
  constructor(readonly exitCode = EXIT_FAILURE) {
    super('reported');
  }
}

/** Anything shaped like a capstan cap (CS1:KIND:…), or a long base32 run that could be a cap's secret part. */
const CAP_LIKE = /CS1:[A-Za-z0-9_-]+(?::[A-Za-z0-9_=-]*)*/g;

export function redactCaps(text: string): string {
  return text.replace(CAP_LIKE, 'CS1:…');
}

/** Errors whose message is written for the operator; anything else is a bug or an OS error. */
function describe(err: unknown): string {
  if (err instanceof UsageError || isCapstanError(err)) return err.message;
  const e = err as NodeJS.ErrnoException | null;
  if (e && typeof e.code === 'string' && typeof e.syscall === 'string') {
    // fs errors: "ENOENT: no such file or directory, open 'x'" is already one readable line.
    return e.message;
  }
  if (e instanceof Error) return e.message || e.name;
  return String(err);
}

export function reportError(err: unknown, debug: boolean): number {
  if (err instanceof ReportedFailure) return err.exitCode;
  const firstLine = describe(err).split('\n')[0] ?? 'error';
  process.stderr.write(`capstan: ${redactCaps(firstLine)}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(redactCaps(err.stack) + '\n');
  return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
}
