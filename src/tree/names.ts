import { InvalidInputError } from '../errors.js';

/** Longest directory entry name, in UTF-8 bytes (the POSIX NAME_MAX every SFTP client expects). */
export const MAX_NAME_BYTES = 255;

const encoder = new TextEncoder();
// In `u` mode a well-formed surrogate pair is one code point, so this matches
// only lone surrogates: JS strings can hold them, UTF-8 cannot.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks a directory entry name and returns it unchanged: a name is kept
 * exactly as the client gave it, byte for byte, as on a POSIX file system.
 * There is no Unicode normalization: `é` typed as NFD (`e` + U+0301, as
 * macOS writes it) and as NFC (U+00E9) are two names and two entries, and
 * each comes back in the spelling it was created with. (Format v1 stored
 * names NFC-normalized; that made `rsync --delete` over sshfs delete the
 * files it had just copied, see docs/spec/directories.md, Names.)
 *
 * Rejected with InvalidInputError: non-strings, '', '.', '..', names holding
 * '/' or NUL (path syntax, never part of a name), lone surrogates (not
 * representable in UTF-8), and names over MAX_NAME_BYTES UTF-8 bytes.
 * Messages never echo the name (names can be private).
 */
export function checkName(name: string): string {
  if (typeof name !== 'string') throw new InvalidInputError('a name is a string');
  if (name === '' || name === '.' || name === '..') throw new InvalidInputError('name is empty, "." or ".."');
  if (name.includes('/') || name.includes('\0')) throw new InvalidInputError('name contains "/" or NUL');
  if (LONE_SURROGATE.test(name)) throw new InvalidInputError('name is not valid UTF-8');
  if (longerThanInUtf8(name, MAX_NAME_BYTES)) throw new InvalidInputError(`name is longer than ${MAX_NAME_BYTES} UTF-8 bytes`);
  return name;
}

/** UTF-8 bytes of a checked name. */
export function nameBytes(name: string): Uint8Array {
  return encoder.encode(name);
}

function longerThanInUtf8(text: string, max: number): boolean {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short names need no count.
  return text.length * 3 > max && Buffer.byteLength(text, 'utf8') > max;
}
