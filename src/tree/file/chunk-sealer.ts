import { createHash, type Hash } from 'node:crypto';
import { GCM_TAG_BYTES, sealConvergentInto } from '../../crypto/aead.js';
import { sha256, taggedHmac } from '../../crypto/kdf.js';
import { TAG } from '../../crypto/tags.js';
import type { Checksums } from '../api.js';

/**
 * k_i = HMAC(convergence, "capstan-v1:chk:chunk-key", sha256(P_i)).
 * Hashing P_i first costs the same one SHA-256 pass as an HMAC over P_i, and
 * taggedHmac over P_i itself would copy the chunk into a netstring (measured
 * ~40% slower); the 32-byte digest keeps the derivation copy-free.
 *
 * Part of file format v1 (format.ts re-exports it): it lives here so that the
 * seal worker, which imports this module, loads only node:crypto and the
 * crypto layer's kdf, tags and aead, not the cap and multiformats modules
 * format.ts needs (about 8 MiB more per thread).
 */
export function deriveChunkKey(convergence: Uint8Array, plaintextSha256: Uint8Array): Uint8Array {
  return taggedHmac(convergence, TAG.chunkKey, plaintextSha256);
}

/** The checksum set's bits (format.ts has the same constants; this module must not import format.ts). */
const MD5_BIT = 0x01;
const SHA1_BIT = 0x02;

/**
 * The per-chunk work of a file upload, in order: the chunks feed the
 * whole-file digests (SHA-256, and MD5 and SHA-1 when the checksum set asks
 * for them), and each is sealed under its convergent key,
 * AES-256-GCM(deriveChunkKey(convergence, sha256(P)), zero nonce, P) ‖ tag.
 *
 * One implementation for both places it runs: inline in the file writer
 * (writer.ts, a single-chunk file or offload off) and on a seal worker
 * thread (seal.worker.ts, one sealer per file session). The frozen vectors
 * (test/vectors/files.json) and test/tree/seal-pool.test.ts hold the output.
 * The digests need every chunk exactly once and in order; the caller
 * guarantees that (the writer seals in order, a session stays on one thread).
 */
export class ChunkSealer {
  readonly #sha256: Hash = createHash('sha256');
  /** The file's SHA-256 when its only chunk was sealed with `only` (see seal). */
  #onlyDigest: Uint8Array | undefined;
  #chunks = 0;
  readonly #md5: Hash | undefined;
  readonly #sha1: Hash | undefined;

  /**
   * `wholeChunk`: encrypt each chunk with one update() call, so its scratch
   * is one chunk-sized buffer rather than sealConvergentInto's default 64 KiB
   * pieces (seal.worker.ts says why the worker wants that).
   * `checksums`: the checksum set m (format.ts), default all three.
   */
  constructor(
    private readonly convergence: Uint8Array,
    private readonly options: { wholeChunk?: boolean; checksums?: number } = {},
  ) {
    const m = options.checksums ?? MD5_BIT | SHA1_BIT;
    this.#md5 = m & MD5_BIT ? createHash('md5') : undefined;
    this.#sha1 = m & SHA1_BIT ? createHash('sha1') : undefined;
  }

  /**
   * Hashes `plaintext` into the whole-file digests and seals it into the
   * first plaintext.length + 16 bytes of `out` (a fresh buffer when none is
   * given); answers the chunk key and the sealed bytes.
   *
   * `only`: this is the file's one chunk (the caller knows: it seals a file
   * that never outgrew its first chunk, at finish). Then sha256(P), which
   * the chunk key needs anyway, is the file's SHA-256 too, and the chunk is
   * hashed once instead of twice (a small upload's SHA-256 passes went from
   * four to three). No chunk may be sealed before or after it.
   */
  seal(plaintext: Uint8Array, out?: Uint8Array, only = false): { key: Uint8Array; sealed: Uint8Array } {
    if (this.#onlyDigest !== undefined || (only && this.#chunks > 0)) throw new Error('a file of one chunk has no other chunk');
    this.#chunks++;
    const digest = sha256(plaintext);
    if (only) this.#onlyDigest = digest;
    else this.#sha256.update(plaintext);
    this.#md5?.update(plaintext);
    this.#sha1?.update(plaintext);
    const key = deriveChunkKey(this.convergence, digest);
    const sealed = (out ?? Buffer.allocUnsafe(plaintext.length + GCM_TAG_BYTES)).subarray(0, plaintext.length + GCM_TAG_BYTES);
    sealConvergentInto(key, plaintext, sealed, this.options.wholeChunk ? { pieceBytes: Math.max(1, plaintext.length) } : {});
    return { key, sealed };
  }

  /** The whole-file digests of every chunk sealed; the sealer is spent afterwards. */
  finish(): Checksums {
    const sums: Checksums = { sha256: this.#onlyDigest ?? new Uint8Array(this.#sha256.digest()) };
    if (this.#md5) sums.md5 = new Uint8Array(this.#md5.digest());
    if (this.#sha1) sums.sha1 = new Uint8Array(this.#sha1.digest());
    return sums;
  }
}
