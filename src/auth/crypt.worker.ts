import { timingSafeEqual } from 'node:crypto';
import apacheMd5 from 'apache-md5';
import { verify as shaCryptVerify } from 'unixcrypt';
import { requestPort } from '../util/request-worker.js';

/**
 * The crypt(3) checker's thread (crypt-thread.ts): unixcrypt's verify for $5$
 * and $6$, apache-md5 for $1$. It implements no part of either algorithm.
 *
 * apache-md5 hashes its input with node's 'ascii' encoding, which for a
 * string is the low byte of each UTF-16 unit: the password goes in as the
 * latin1 spelling of its UTF-8 bytes, so the bytes hashed are the UTF-8
 * bytes, as glibc's crypt(3) hashes them. Its output is compared with the
 * stored hash in constant time; unixcrypt compares in constant time itself.
 *
 * Errors from the libraries are turned into `false` here, with no message
 * (which could quote the hash).
 */

export interface CryptMessage {
  kind: 'md5' | 'sha';
  password: string;
  hash: string;
}

export interface CryptAnswer {
  ok: boolean;
}

function check({ kind, password, hash }: CryptMessage): boolean {
  if (kind === 'md5') {
    const out = Buffer.from(apacheMd5(Buffer.from(password, 'utf8').toString('latin1'), hash), 'utf8');
    const want = Buffer.from(hash, 'utf8');
    return out.length === want.length && timingSafeEqual(out, want);
  }
  return shaCryptVerify(password, hash) === true;
}

const port = requestPort();
port.on('message', (m: CryptMessage & { id: number }) => {
  let ok = false;
  try {
    ok = check(m);
  } catch {
    ok = false;
  }
  const answer: CryptAnswer = { ok };
  port.postMessage({ id: m.id, ...answer });
});
