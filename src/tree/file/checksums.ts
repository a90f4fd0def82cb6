import { createHash } from 'node:crypto';
import type { Checksums } from '../api.js';

/** The three whole-file digests every manifest records (and a literal cap computes on demand). */
export function checksumsOf(data: Uint8Array): Checksums {
  return {
    sha256: new Uint8Array(createHash('sha256').update(data).digest()),
    md5: new Uint8Array(createHash('md5').update(data).digest()),
    sha1: new Uint8Array(createHash('sha1').update(data).digest()),
  };
}

/** Callers get their own copies, so nobody can alter what a reader hands out next. */
export function copyChecksums(sums: Checksums): Checksums {
  // new Uint8Array(view) copies, whether or not the view is a Buffer (whose slice() would not).
  return { sha256: new Uint8Array(sums.sha256), md5: new Uint8Array(sums.md5), sha1: new Uint8Array(sums.sha1) };
}
