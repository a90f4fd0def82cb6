import { InvalidInputError } from '../errors.js';

/** Longest directory entry name, in UTF-8 bytes (the POSIX NAME_MAX every SFTP client expects). */
export const MAX_NAME_BYTES = 255;

const encoder = new TextEncoder();
// In `u` mode a well-formed surrogate pair is one code point, so this matches
// only lone surrogates: JS strings can hold them, UTF-8 cannot.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The one spelling of a directory entry name: NFC-normalized, so a name typed
 * on macOS (NFD) and on Linux (usually NFC) is the same entry.
 *
 * Rejected with InvalidInputError: non-strings, '', '.', '..', names holding
 * '/' or NUL (path syntax, never part of a name), U+FFFD (what invalid UTF-8
 * from the wire becomes once decoded: storing it would make the original
 * bytes unrecoverable and two different bad names collide), lone surrogates,
 * and names over MAX_NAME_BYTES UTF-8 bytes after normalization.
 * Messages never echo the name (names can be private).
 */
export function normalizeName(name: string): string {
  if (typeof name !== 'string') throw new InvalidInputError('a name is a string');
  const nfc = name.normalize('NFC');
  if (nfc === '' || nfc === '.' || nfc === '..') throw new InvalidInputError('name is empty, "." or ".."');
  if (nfc.includes('/') || nfc.includes('\0')) throw new InvalidInputError('name contains "/" or NUL');
  if (nfc.includes('\uFFFD') || LONE_SURROGATE.test(nfc)) throw new InvalidInputError('name is not valid UTF-8');
  if (longerThanInUtf8(nfc, MAX_NAME_BYTES)) throw new InvalidInputError(`name is longer than ${MAX_NAME_BYTES} UTF-8 bytes`);
  return nfc;
}

/** UTF-8 bytes of a normalized name. */
export function nameBytes(name: string): Uint8Array {
  return encoder.encode(name);
}

function longerThanInUtf8(text: string, max: number): boolean {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short names need no count.
  return text.length * 3 > max && Buffer.byteLength(text, 'utf8') > max;
}
