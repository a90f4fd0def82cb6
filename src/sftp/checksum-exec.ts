import { createHash } from 'node:crypto';
import type { FileCap } from '../cap/index.js';
import { IsADirectoryError, NotFoundError, type AbortOptions } from '../errors.js';
import type { ChecksumAlgorithm } from '../tree/index.js';
import type { ExecResult, StdinReader } from './ssh-session.js';
import type { UserTree } from './user-tree.js';

/**
 * `sha256sum PATH…`, `md5sum PATH…` and `sha1sum PATH…` over SSH exec,
 * answered from the file's manifest when it records the digest (SHA-256
 * always; MD5 and SHA-1 as `[storage] checksums` was when the file was
 * written): the file's chunks are then never read. A digest the manifest
 * does not record is computed by streaming the file (FileReader.checksum,
 * bounded memory, the CPU of one download). A literal (small, inline)
 * file's digests are computed from its bytes.
 *
 * There is still no shell. The command is parsed strictly: words separated
 * by spaces or tabs; a word is plain characters, '…' (anything but '), "…"
 * (anything but ", $, `, \ and a newline), \X (X itself: rclone escapes
 * every character outside [A-Za-z0-9_.,:/@-] and non-ASCII that way, and
 * writes a newline in a name as '<LF>'), or a concatenation of those; an
 * unquoted shell metacharacter, a newline outside '…', another control
 * character or an option makes the command unknown, and the caller refuses
 * it as any other exec. Output matches coreutils: `<hex>  <path>\n` per
 * file with the path as given; a missing file is `<cmd>: <path>: No such
 * file or directory` on stderr and the exit status is 1 if any path failed.
 *
 * No path, or the one path `-`, hashes the exec's standard input, as
 * coreutils does: rclone's SFTP backend decides whether a server has
 * md5sum or sha1sum by running the bare command with empty input and
 * comparing the answer with the digest of nothing; without this it checks
 * sizes only. The input is bounded (ssh-session.ts: MAX_STDIN_BYTES, and
 * STDIN_TIMEOUT_MS for its end to come).
 */

export const CHECKSUM_COMMANDS = { sha256sum: 'sha256', md5sum: 'md5', sha1sum: 'sha1' } as const;
type CommandName = keyof typeof CHECKSUM_COMMANDS;

/** Bounds what one exec may ask for. */
export const MAX_COMMAND_BYTES = 64 * 1024;
export const MAX_CHECKSUM_PATHS = 1000;
/** The path that names standard input. */
const STDIN = '-';

const UNQUOTED_META = /[|&;<>()$`\\"'*?[\]#~{}!]/;

/** The words of `command`, or undefined if it is not in the strict subset above. */
export function splitCommand(command: string): string[] | undefined {
  if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) return undefined;
  // A newline is taken only inside '…' (rclone sends one in a name as '<LF>'); elsewhere it would end the command.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this refuses
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(command)) return undefined;
  const words: string[] = [];
  let i = 0;
  while (i < command.length) {
    while (command[i] === ' ' || command[i] === '\t') i++;
    if (i >= command.length) break;
    let word = '';
    while (i < command.length && command[i] !== ' ' && command[i] !== '\t') {
      const c = command[i]!;
      if (c === "'") {
        const end = command.indexOf("'", i + 1);
        if (end < 0) return undefined;
        word += command.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        const end = command.indexOf('"', i + 1);
        if (end < 0) return undefined;
        const inner = command.slice(i + 1, end);
        if (/[$`\\\n]/.test(inner)) return undefined;
        word += inner;
        i = end + 1;
      } else {
        if (c === '\\') {
          // A backslash outside quotes makes the next character plain, as in sh; one at the end escapes nothing.
          const next = command[i + 1];
          if (next === undefined || next === '\n') return undefined;
          word += next;
          i += 2;
          continue;
        }
        if (UNQUOTED_META.test(c) || c === '\t' || c === '\n') return undefined;
        word += c;
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

/** The checksum command and its paths (`-`: standard input), or undefined for anything else. */
export function parseChecksumCommand(command: string): { name: CommandName; paths: string[] } | undefined {
  const words = splitCommand(command);
  if (words === undefined || words.length < 1) return undefined;
  const [name, ...rest] = words as [string, ...string[]];
  if (!Object.hasOwn(CHECKSUM_COMMANDS, name)) return undefined;
  // `--` ends options as in coreutils; any other option (-c, --tag, -b …) is not served.
  const paths = rest[0] === '--' ? rest.slice(1) : rest;
  if (paths.length === 0) return { name: name as CommandName, paths: [STDIN] };
  if (paths.length === 1 && paths[0] === STDIN) return { name: name as CommandName, paths };
  if (rest[0] !== '--' && paths.some((p) => p.startsWith('-'))) return undefined;
  // Standard input once, alone: a second `-` would read nothing, and mixing it with files is never what rclone asks.
  if (paths.length > MAX_CHECKSUM_PATHS || paths.some((p) => p === '' || p === STDIN)) return undefined;
  return { name: name as CommandName, paths };
}

/** A file's `algorithm` digest: recorded in its manifest, or computed by reading the file. */
export async function checksumAt(
  view: UserTree,
  raw: string,
  algorithm: ChecksumAlgorithm,
  options: AbortOptions = {},
): Promise<Uint8Array> {
  const { kind, cap } = await view.node(raw);
  if (kind === 'directory') throw new IsADirectoryError('is a directory');
  if (kind !== 'file') throw new NotFoundError('no such file');
  const reader = await view.tree.openFile(cap as FileCap, options);
  return reader.checksum(algorithm, options);
}

async function checksumOfStdin(stdin: StdinReader, algorithm: ChecksumAlgorithm): Promise<Uint8Array> {
  const hash = createHash(algorithm);
  await stdin((piece) => hash.update(piece));
  return new Uint8Array(hash.digest());
}

/** coreutils' strerror text for the errors a lookup can give; anything else is unexpected and rethrown. */
function reason(err: unknown): string {
  switch ((err as Error)?.name) {
    case 'NotFoundError':
    case 'CapParseError':
      return 'No such file or directory';
    case 'NotADirectoryError':
      return 'Not a directory';
    case 'IsADirectoryError':
      return 'Is a directory';
    case 'PermissionError':
      return 'Permission denied';
    case 'InvalidInputError':
      return 'Invalid argument';
    case 'IntegrityError':
      return 'Input/output error';
    case 'StdinError':
      return (err as Error).message;
    default:
      throw err;
  }
}

/**
 * Runs a checksum command for `view`'s user; undefined if `command` is not
 * one (the caller refuses it). `stdin` reads the exec's standard input
 * (ssh-session.ts bounds it), hashed as it comes; asked only for the path `-`.
 */
export function runChecksumCommand(view: UserTree, command: string, stdin: StdinReader): Promise<ExecResult> | undefined {
  const parsed = parseChecksumCommand(command);
  if (parsed === undefined) return undefined;
  return (async () => {
    const algorithm = CHECKSUM_COMMANDS[parsed.name];
    let stdout = '';
    let stderr = '';
    for (const path of parsed.paths) {
      try {
        const digest = path === STDIN ? await checksumOfStdin(stdin, algorithm) : await checksumAt(view, path, algorithm);
        stdout += `${Buffer.from(digest).toString('hex')}  ${path}\n`;
      } catch (err) {
        stderr += `${parsed.name}: ${path}: ${reason(err)}\n`;
      }
    }
    return { stdout, stderr, code: stderr === '' ? 0 : 1 };
  })();
}
