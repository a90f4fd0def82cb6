import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { InvalidInputError } from '../errors.js';

/**
 * Password hashes in the accounts file: scrypt (RFC 7914) in one exact text form
 *
 *     $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>
 *
 * - `ln`, `r`, `p` are decimal without leading zeros, in that order.
 * - `<salt>` and `<hash>` are standard base64 (RFC 4648 §4) WITHOUT `=` padding,
 *   as in the PHC string format; the text MUST re-encode to itself (no
 *   alternative spellings of the same bytes).
 * - The derived key is scrypt(password as UTF-8, salt, N = 2^ln, r, p), and its
 *   length is the length of `<hash>`.
 *
 * hashPassword writes ln=15 (N = 32768), r=8, p=1, a 16-byte salt and a 32-byte
 * hash: 32 MiB and ~0.1 s per check on a small server. The bounds below refuse
 * parameters that would let one accounts line pin a lot of memory or CPU per
 * login attempt (the line is operator-written, but a typo should not become a
 * denial of service).
 */

export interface ScryptParams {
  /** log2 of the scrypt cost N */
  ln: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ ln: 15, r: 8, p: 1 });
const SALT_BYTES = 16;
const HASH_BYTES = 32;

/** Accepted ranges when reading a hash (writing always uses the defaults unless a test asks otherwise). */
const LN_RANGE = [10, 20] as const;
const R_RANGE = [1, 32] as const;
const P_RANGE = [1, 16] as const;
const SALT_RANGE = [8, 64] as const;
const HASH_RANGE = [16, 64] as const;
/** Upper bound on scrypt memory for one check; node's default maxmem (32 MiB) is exactly the default cost, too tight. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
/** Passwords longer than this are never right; bounding them bounds the work an attacker can ask for. */
export const MAX_PASSWORD_BYTES = 1024;

const HASH_RE = /^\$scrypt\$ln=(0|[1-9][0-9]{0,2}),r=(0|[1-9][0-9]{0,2}),p=(0|[1-9][0-9]{0,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export interface ParsedPasswordHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

/** Memory scrypt needs for these parameters (node's own formula: 128 * N * r, plus the p blocks). */
function scryptMemory({ ln, r, p }: ScryptParams): number {
  return 128 * r * 2 ** ln + 128 * r * p;
}

function decodeUnpadded(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return encodeUnpadded(bytes) === text ? bytes : undefined;
}

function encodeUnpadded(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

function inRange(n: number, [lo, hi]: readonly [number, number]): boolean {
  return n >= lo && n <= hi;
}

/**
 * Parses a `$scrypt$` hash string. Throws InvalidInputError naming the fault
 * (never echoing the text, which is as sensitive as the salt+hash it holds).
 */
export function parsePasswordHash(text: string): ParsedPasswordHash {
  const m = HASH_RE.exec(text);
  if (m === null) throw new InvalidInputError('malformed $scrypt$ password hash');
  const params: ScryptParams = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (!inRange(params.ln, LN_RANGE) || !inRange(params.r, R_RANGE) || !inRange(params.p, P_RANGE)) {
    throw new InvalidInputError(
      `scrypt parameters out of range (ln ${LN_RANGE.join('..')}, r ${R_RANGE.join('..')}, p ${P_RANGE.join('..')})`,
    );
  }
  if (scryptMemory(params) > MAX_SCRYPT_MEMORY) throw new InvalidInputError('scrypt parameters need too much memory');
  const salt = decodeUnpadded(m[4]!);
  const hash = decodeUnpadded(m[5]!);
  if (salt === undefined || hash === undefined) throw new InvalidInputError('password hash salt or hash is not canonical unpadded base64');
  if (!inRange(salt.length, SALT_RANGE)) throw new InvalidInputError('password hash salt length out of range');
  if (!inRange(hash.length, HASH_RANGE)) throw new InvalidInputError('password hash length out of range');
  return { params, salt, hash };
}

export function formatPasswordHash({ params, salt, hash }: ParsedPasswordHash): string {
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${encodeUnpadded(salt)}$${encodeUnpadded(hash)}`;
}

function derive(password: string | Buffer, salt: Buffer, keyLength: number, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.ln;
  // maxmem is set from the parameters (with headroom) because node's default
  // 32 MiB refuses exactly our default cost; parsePasswordHash bounds it.
  const maxmem = scryptMemory(params) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, keyLength, { N, r: params.r, p: params.p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** Hashes a password for the accounts file. `params` exists for tests; operators get the defaults. */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  if (typeof password !== 'string' || password.length === 0) throw new InvalidInputError('password must be a non-empty string');
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES)
    throw new InvalidInputError(`password longer than ${MAX_PASSWORD_BYTES} bytes`);
  const salt = randomBytes(SALT_BYTES);
  const parsedParams = { ...params };
  // Round-trip through the parser so we never write a hash we would refuse to read.
  const probe = formatPasswordHash({ params: parsedParams, salt, hash: Buffer.alloc(HASH_BYTES) });
  parsePasswordHash(probe);
  const hash = await derive(password, salt, HASH_BYTES, parsedParams);
  return formatPasswordHash({ params: parsedParams, salt, hash });
}

/**
 * True iff `password` matches `hash`. Never throws for a wrong password or a
 * malformed hash (both are simply false), so callers have one path to time.
 * An over-long password still costs one scrypt (against a dummy) so its
 * length is not an oracle.
 */
export async function verifyPassword(password: string, hash: string | ParsedPasswordHash): Promise<boolean> {
  let parsed: ParsedPasswordHash;
  try {
    parsed = typeof hash === 'string' ? parsePasswordHash(hash) : hash;
  } catch {
    return false;
  }
  const tooLong = typeof password !== 'string' || Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES;
  const candidate = await derive(tooLong ? '' : password, parsed.salt, parsed.hash.length, parsed.params);
  return timingSafeEqual(candidate, parsed.hash) && !tooLong;
}

/**
 * A well-formed hash that no password matches (random salt and random
 * "hash"), with the given parameters: verifying against it costs exactly
 * what a real check costs. Used for unknown users and users without a
 * password, so they cannot be told apart from a wrong password by timing.
 */
export function dummyPasswordHash(params: ScryptParams = DEFAULT_SCRYPT_PARAMS): ParsedPasswordHash {
  return { params: { ...params }, salt: randomBytes(SALT_BYTES), hash: randomBytes(HASH_BYTES) };
}
