import { verify as bcryptVerify } from '@node-rs/bcrypt';
import { CryptThread } from './crypt-thread.js';

/**
 * Password hashes as central user databases store them: bcrypt and the
 * crypt(3) forms glibc reads. These arrive from a user directory
 * (src/users), never from the accounts file (which takes only $scrypt$).
 *
 *     $2a$CC$<22 salt><31 hash>       bcrypt (also $2b$, $2y$); CC the cost, 04..MAX_BCRYPT_COST
 *     $1$<salt ≤ 8>$<22>              md5-crypt
 *     $5$[rounds=N$]<salt ≤ 16>$<43>  sha256-crypt; N from 1000 to MAX_SHA_CRYPT_ROUNDS
 *     $6$[rounds=N$]<salt ≤ 16>$<86>  sha512-crypt
 *
 * Each algorithm is computed by a library made for it, never by code here:
 * @node-rs/bcrypt (Rust's bcrypt crate on libuv's thread pool; its verify
 * compares in constant time) for bcrypt, unixcrypt for $5$ and $6$ and
 * apache-md5 for $1$, the last two on a worker thread (crypt-thread.ts) since
 * they are plain JavaScript: a default-cost sha512-crypt check takes ~26 ms
 * of CPU that must not block the event loop. The comparison of crypt(3)
 * outputs is constant-time.
 *
 * Anything else (plaintext, $apr1$, yescrypt $y$, argon2, a bcrypt cost above
 * the bound) is refused by parseCryptHash with a reason that names the format
 * only, never the text: a hash is as sensitive as a password to an offline
 * guesser.
 */

export type CryptFormat = 'bcrypt' | 'md5-crypt' | 'sha256-crypt' | 'sha512-crypt';

export interface ParsedCryptHash {
  format: CryptFormat;
  /** The hash text, for the verifier; never logged. */
  text: string;
}

export type CryptParseResult = { ok: true; hash: ParsedCryptHash } | { ok: false; format: string; reason: string };

/** bcrypt cost 2^14: about 1.9 s of one thread per check here; CentralEGA uses 12 (~0.5 s). */
export const MAX_BCRYPT_COST = 14;
/** sha-crypt rounds: glibc's default is 5000 (~26 ms for $6$ here); a million is ~5 s of a worker thread. */
export const MAX_SHA_CRYPT_ROUNDS = 1_000_000;
/** Longer passwords are never right: bounding them bounds the work a guess can ask for. */
export const MAX_CRYPT_PASSWORD_BYTES = 1024;
/** Longer texts are not hashes of any supported form. */
const MAX_HASH_TEXT = 256;

const BCRYPT_RE = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const MD5_RE = /^\$1\$[./0-9A-Za-z]{0,8}\$[./0-9A-Za-z]{22}$/;
const SHA_RE = /^\$([56])\$(?:rounds=([1-9][0-9]{0,9})\$)?[./0-9A-Za-z]{0,16}\$([./0-9A-Za-z]+)$/;

/** The loggable name of a hash's format: its `$id$` if it has a plain one, never any of the rest. */
export function cryptFormatName(text: string): string {
  const m = /^\$([A-Za-z0-9-]{1,16})\$/.exec(text);
  if (m !== null) return `$${m[1]}$`;
  return text.startsWith('$') ? 'malformed $-prefixed text' : 'not a crypt(3) hash (plaintext?)';
}

/** Classifies a hash text. Never throws; a refusal says why without quoting the text. */
export function parseCryptHash(text: unknown): CryptParseResult {
  if (typeof text !== 'string' || text.length === 0) return { ok: false, format: 'empty', reason: 'no password hash' };
  const format = text.length > MAX_HASH_TEXT ? 'over-long text' : cryptFormatName(text);
  if (text.length > MAX_HASH_TEXT) return { ok: false, format, reason: 'too long for any supported hash' };
  const bcrypt = BCRYPT_RE.exec(text);
  if (bcrypt !== null) {
    const cost = Number(bcrypt[1]);
    if (cost < 4 || cost > MAX_BCRYPT_COST) return { ok: false, format, reason: `bcrypt cost ${cost} outside 4..${MAX_BCRYPT_COST}` };
    return { ok: true, hash: { format: 'bcrypt', text } };
  }
  if (MD5_RE.test(text)) return { ok: true, hash: { format: 'md5-crypt', text } };
  const sha = SHA_RE.exec(text);
  if (sha !== null) {
    const sha256 = sha[1] === '5';
    if (sha[3]?.length !== (sha256 ? 43 : 86)) return { ok: false, format, reason: 'malformed sha-crypt hash' };
    const rounds = sha[2] === undefined ? 5000 : Number(sha[2]);
    // Below 1000 is raised to 1000 by the algorithm itself (and by glibc).
    if (rounds > MAX_SHA_CRYPT_ROUNDS) return { ok: false, format, reason: `sha-crypt rounds ${rounds} above ${MAX_SHA_CRYPT_ROUNDS}` };
    return { ok: true, hash: { format: sha256 ? 'sha256-crypt' : 'sha512-crypt', text } };
  }
  if (/^\$2[aby]?\$/.test(text) || /^\$[156]\$/.test(text)) return { ok: false, format, reason: 'malformed hash' };
  return { ok: false, format, reason: 'unsupported password hash format' };
}

/**
 * Checks passwords against parsed hashes. verify() never throws: a library
 * error (which cannot happen for a hash parseCryptHash accepted) is `false`.
 * Callers bound how many run at once (HashLimiter); the crypt(3) forms share
 * one worker thread, which queues them.
 */
export class CryptVerifier {
  #worker: CryptThread | undefined;

  async verify(password: string, hash: ParsedCryptHash): Promise<boolean> {
    if (typeof password !== 'string' || Buffer.byteLength(password, 'utf8') > MAX_CRYPT_PASSWORD_BYTES) return false;
    try {
      if (hash.format === 'bcrypt') return (await bcryptVerify(password, hash.text)) === true;
      this.#worker ??= new CryptThread();
      return await this.#worker.verify(hash.format === 'md5-crypt' ? 'md5' : 'sha', password, hash.text);
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.close();
  }
}
