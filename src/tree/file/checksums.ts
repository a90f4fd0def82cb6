import { createHash } from 'node:crypto';
import type { AbortOptions } from '../../errors.js';
import type { ChecksumAlgorithm, Checksums, FileReader } from '../api.js';

/** The three whole-file digests of a literal file (its bytes are in its cap, so all three are always at hand). */
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
  const copy: Checksums = { sha256: new Uint8Array(sums.sha256) };
  if (sums.md5 !== undefined) copy.md5 = new Uint8Array(sums.md5);
  if (sums.sha1 !== undefined) copy.sha1 = new Uint8Array(sums.sha1);
  return copy;
}

/**
 * `algorithm`'s digest of the whole file: the recorded one, or, when the
 * manifest does not record it (manifest v2, docs/spec/files.md), computed by
 * streaming the file through the reader. Memory stays at stream()'s bound
 * (a few chunks); the cost is one read of the file (fetch, verify, decrypt,
 * hash), about what a download costs the server.
 */
export async function checksumOrCompute(
  reader: FileReader,
  recorded: Checksums,
  algorithm: ChecksumAlgorithm,
  options: AbortOptions = {},
): Promise<Uint8Array> {
  const digest = recorded[algorithm];
  if (digest !== undefined) return new Uint8Array(digest);
  const hash = createHash(algorithm);
  for await (const piece of reader.stream(0, reader.size, options)) hash.update(piece);
  return new Uint8Array(hash.digest());
}
