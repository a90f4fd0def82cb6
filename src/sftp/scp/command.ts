import { hasBare, type ShellWord, shellWords } from '../shell-words.js';

/** What legacy scp asks of the server end: `scp [-r] [-p] [-d] [-v] -t TARGET` or `scp [-r] [-p] [-v] -f PATH…`. */
export interface ScpCommand {
  /** `-t`: the client sends files to TARGET (we are the sink); `-f`: we send PATHs (we are the source). */
  readonly direction: 'to' | 'from';
  /** `-r`: directories too. */
  readonly recursive: boolean;
  /** `-p`: times and modes are kept. */
  readonly preserve: boolean;
  /** `-d`: TARGET must be a directory (the client sends several files). */
  readonly targetIsDirectory: boolean;
  readonly paths: readonly ShellWord[];
}

/** What a legacy scp command starts with (whether or not the rest is one this server runs). */
export const SCP_COMMAND = /^\s*scp\s/;

/** Options the server end of OpenSSH's and PuTTY's scp is sent; `-v` and `-q` change nothing here. */
const FLAGS = new Set(['t', 'f', 'r', 'p', 'd', 'v', 'q']);

/**
 * Characters a shell would act on that this server, having none, cannot:
 * a command using one bare is refused whole rather than half understood.
 * Globs (`*`, `?`, `[`) and a leading `~` are expanded (glob.ts); `{`, `}`
 * and `!` are taken literally, as sh (not bash) takes them.
 */
const NO_SHELL = /[|&;<>()$`]/;

/**
 * Parses the exec command legacy scp sends. Undefined if the command is not
 * scp at all; `{ error }` if it is scp but not one this server runs (the
 * message goes to the client's stderr).
 */
export function parseScpCommand(command: string): ScpCommand | { error: string } | undefined {
  const words = shellWords(command);
  if (words === undefined) return SCP_COMMAND.test(command) ? { error: 'scp: command not understood' } : undefined;
  const [name, ...rest] = words;
  if (name === undefined || name.text !== 'scp' || !name.bare.every(Boolean)) return undefined;
  const flags = new Set<string>();
  let i = 0;
  for (; i < rest.length; i++) {
    const word = rest[i]?.text ?? '';
    if (word === '--') {
      i++;
      break;
    }
    if (!word.startsWith('-') || word === '-') break;
    for (const flag of word.slice(1)) {
      if (!FLAGS.has(flag)) return { error: `scp: unknown option -- ${flag}` };
      flags.add(flag);
    }
  }
  const paths = rest.slice(i);
  // Neither: a copy between two remote hosts without -3 asks the first one's scp to run the copy itself.
  if (!flags.has('t') && !flags.has('f'))
    return { error: 'scp: this server runs no scp of its own; to copy between two remote hosts use scp -3' };
  if (flags.has('t') && flags.has('f')) return { error: 'scp: exactly one of -t and -f' };
  if (paths.length === 0) return { error: 'scp: no path given' };
  for (const path of paths) {
    if (hasBare(path, NO_SHELL) || (path.text.startsWith('#') && path.bare[0] === true))
      return { error: 'scp: this server runs no shell; quote special characters in remote paths' };
  }
  const direction = flags.has('t') ? 'to' : 'from';
  if (direction === 'to' && paths.length !== 1) return { error: 'scp: ambiguous target' };
  return {
    direction,
    recursive: flags.has('r'),
    preserve: flags.has('p'),
    targetIsDirectory: flags.has('d'),
    paths,
  };
}
