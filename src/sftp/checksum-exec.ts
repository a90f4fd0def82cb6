import { createHash } from 'node:crypto';
import type { FileCap } from '../cap/index.js';
import { IsADirectoryError, NotFoundError, type AbortOptions } from '../errors.js';
import type { ChecksumAlgorithm } from '../tree/index.js';
import { hasBare, shellWords } from './shell-words.js';
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
 * There is still no shell. The command is split into words as sh quotes
 * them (shell-words.ts); a bare shell metacharacter (a glob, `~`, `$`, a
 * redirection …) or an option makes the command unknown, and the caller
 * refuses it as any other exec. Output matches coreutils: `<hex>  <path>\n`
 * per file with the path as given; a missing file is `<cmd>: <path>: No
 * such file or directory` on stderr and the exit status is 1 if any path
 * failed.
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

export const MAX_CHECKSUM_PATHS = 1000;
/** The path that names standard input. */
const STDIN = '-';

/** Characters sh would give a meaning outside quotes (globs, `~`, redirections …): a command holding one is not served. */
const UNQUOTED_META = /[|&;<>()$`*?[\]#~{}!]/;

/** The words of `command`, or undefined if it is not in the strict subset above. */
export function splitCommand(command: string): string[] | undefined {
  const words = shellWords(command);
  if (words === undefined || words.some((word) => hasBare(word, UNQUOTED_META))) return undefined;
  return words.map((word) => word.text);
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
