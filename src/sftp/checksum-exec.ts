import type { FileCap } from '../cap/index.js';
import { IsADirectoryError, NotFoundError, type AbortOptions } from '../errors.js';
import type { ChecksumAlgorithm } from '../tree/index.js';
import type { ExecResult } from './ssh-session.js';
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
 * by spaces or tabs; a word is plain characters, '…' (anything but ') or
 * "…" (anything but ", $, ` and \), or a concatenation of those; an
 * unquoted shell metacharacter, a control character, an option, or no path
 * at all makes the command unknown, and the caller refuses it as any other
 * exec. Output matches coreutils: `<hex>  <path>\n` per file with the path
 * as given; a missing file is `<cmd>: <path>: No such file or directory` on
 * stderr and the exit status is 1 if any path failed.
 */

export const CHECKSUM_COMMANDS = { sha256sum: 'sha256', md5sum: 'md5', sha1sum: 'sha1' } as const;
type CommandName = keyof typeof CHECKSUM_COMMANDS;

/** Bounds what one exec may ask for. */
export const MAX_COMMAND_BYTES = 64 * 1024;
export const MAX_CHECKSUM_PATHS = 1000;

const UNQUOTED_META = /[|&;<>()$`\\"'*?[\]#~{}!]/;

/** The words of `command`, or undefined if it is not in the strict subset above. */
export function splitCommand(command: string): string[] | undefined {
  if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this refuses
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(command)) return undefined;
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
        if (/[$`\\]/.test(inner)) return undefined;
        word += inner;
        i = end + 1;
      } else {
        if (UNQUOTED_META.test(c) || c === '\t') return undefined;
        word += c;
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

/** The checksum command and its paths, or undefined for anything else. */
export function parseChecksumCommand(command: string): { name: CommandName; paths: string[] } | undefined {
  const words = splitCommand(command);
  if (words === undefined || words.length < 2) return undefined;
  const [name, ...rest] = words as [string, ...string[]];
  if (!Object.hasOwn(CHECKSUM_COMMANDS, name)) return undefined;
  // `--` ends options as in coreutils; any other option (-c, --tag, -b …) is not served.
  const paths = rest[0] === '--' ? rest.slice(1) : rest;
  if (rest[0] !== '--' && paths.some((p) => p.startsWith('-'))) return undefined;
  if (paths.length === 0 || paths.length > MAX_CHECKSUM_PATHS || paths.some((p) => p === '')) return undefined;
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
    default:
      throw err;
  }
}

/** Runs a checksum command for `view`'s user; undefined if `command` is not one (the caller refuses it). */
export function runChecksumCommand(view: UserTree, command: string): Promise<ExecResult> | undefined {
  const parsed = parseChecksumCommand(command);
  if (parsed === undefined) return undefined;
  return (async () => {
    const algorithm = CHECKSUM_COMMANDS[parsed.name];
    let stdout = '';
    let stderr = '';
    for (const path of parsed.paths) {
      try {
        const digest = await checksumAt(view, path, algorithm);
        stdout += `${Buffer.from(digest).toString('hex')}  ${path}\n`;
      } catch (err) {
        stderr += `${parsed.name}: ${path}: ${reason(err)}\n`;
      }
    }
    return { stdout, stderr, code: stderr === '' ? 0 : 1 };
  })();
}
