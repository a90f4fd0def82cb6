import { createCipheriv, createDecipheriv } from 'node:crypto';
import { withKey } from './key-scratch.js';
import { hchacha } from '@noble/ciphers/chacha.js';

/**
 * The two AEADs capstan uses.
 *
 * - AES-256-GCM (node:crypto, AES-NI) for immutable content: chunks and
 *   manifests. Their keys are convergent, derived from the plaintext itself,
 *   so one key only ever encrypts one plaintext and a fixed all-zero nonce is
 *   safe (same key ⇒ same plaintext ⇒ same ciphertext, which is the point).
 * - XChaCha20-Poly1305 for mutable objects: directory nodes and sealed
 *   child write caps. One key encrypts many versions, so each gets a random
 *   24-byte nonce, which is safe for XChaCha's nonce size and not for GCM's
 *   12 bytes. Node has no XChaCha, but XChaCha is HChaCha20 (a subkey from
 *   the key and the nonce's first 16 bytes; @noble/ciphers) followed by the
 *   RFC 8439 ChaCha20-Poly1305 that node:crypto has, under that subkey and
 *   the nonce 0⁴ ‖ its last 8 bytes (draft-irtf-cfrg-xchacha §2.3). That is
 *   2 to 3 times faster than @noble's pure-JS AEAD on directory nodes;
 *   test/crypto/aead.test.ts holds the two equal.
 *
 * Open functions throw AeadError on any authentication failure; callers turn
 * it into an IntegrityError naming the object, never leaking which check failed.
 */
export class AeadError extends Error {
  constructor() {
    super('authentication failed');
    this.name = 'AeadError';
  }
}

export const GCM_TAG_BYTES = 16;
export const XCHACHA_NONCE_BYTES = 24;
export const XCHACHA_TAG_BYTES = 16;
const ZERO_NONCE = Buffer.alloc(12);

/** Pieces sealConvergent encrypts (and openConvergentInPlace decrypts) at a time by default: bounds the scratch memory beside the output. */
const SEAL_PIECE_BYTES = 64 * 1024;

export interface SealIntoOptions {
  aad?: Uint8Array | undefined;
  /** Bytes encrypted per update() call, each a fresh scratch buffer (default 64 KiB). */
  pieceBytes?: number | undefined;
}

/**
 * Deterministic AES-256-GCM with a zero nonce: only for keys that encrypt exactly one plaintext.
 * Output = ciphertext ‖ tag, in one new buffer.
 */
export function sealConvergent(key: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + GCM_TAG_BYTES);
  sealConvergentInto(key, plaintext, out, { aad });
  return out;
}

/**
 * sealConvergent, writing ciphertext ‖ tag into the first plaintext.length + 16
 * bytes of `out` (the seal worker's shared-memory slot) instead of a new buffer.
 * update() always allocates, so by default a 1 MiB chunk is fed in 64 KiB
 * pieces: the scratch beside `out` is one piece, not a whole second copy of
 * the chunk. A caller that frees its scratch at once may measure otherwise
 * (the seal worker does: src/tree/file/seal.worker.ts has the figures).
 */
export function sealConvergentInto(key: Uint8Array, plaintext: Uint8Array, out: Uint8Array, options: SealIntoOptions = {}): void {
  if (out.length < plaintext.length + GCM_TAG_BYTES) throw new RangeError('AES-GCM output does not fit');
  const piece = options.pieceBytes ?? SEAL_PIECE_BYTES;
  if (!Number.isSafeInteger(piece) || piece < 1) throw new RangeError('pieceBytes must be a positive integer');
  const c = withKey(key, (k) => createCipheriv('aes-256-gcm', k, ZERO_NONCE));
  if (options.aad) c.setAAD(options.aad);
  let written = 0;
  for (let i = 0; i < plaintext.length; i += piece) {
    written += c.update(plaintext.subarray(i, i + piece)).copy(out, written);
  }
  written += c.final().copy(out, written);
  // GCM is a stream mode: update() returns exactly its input's length, final() nothing.
  if (written !== plaintext.length) throw new Error('AES-GCM produced an unexpected length');
  c.getAuthTag().copy(out, written);
}

export function openConvergent(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer {
  if (sealed.length < GCM_TAG_BYTES) throw new AeadError();
  const d = withKey(key, (k) => createDecipheriv('aes-256-gcm', k, ZERO_NONCE));
  if (aad) d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - GCM_TAG_BYTES));
  const body = d.update(sealed.subarray(0, sealed.length - GCM_TAG_BYTES));
  try {
    d.final();
  } catch {
    throw new AeadError();
  }
  return body;
}

/**
 * openConvergent for a buffer the caller owns and gives up: the plaintext
 * replaces the ciphertext in `sealed`, and the result is a view of its first
 * sealed.length - 16 bytes. On AeadError `sealed` holds unauthenticated
 * bytes, to be thrown away.
 *
 * Why: update() returns a fresh buffer of its input's length. For a 1 MiB
 * chunk malloc hands out pages the kernel must fault in, and on this
 * project's machines a fault costs several µs: decrypting 256 × 1 MiB in one
 * update() each took 1.8–2.3 CPU-s per GiB (about 42,000 faults), against
 * 0.3–0.7 in 64 KiB pieces (about 8,000), which malloc recycles at once.
 * Each piece is copied back into place. `pieceBytes` changes the piece size
 * (the offload thread decrypts a chunk in one piece, see offload.worker.ts).
 */
export function openConvergentInPlace(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array, pieceBytes = SEAL_PIECE_BYTES): Uint8Array {
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1) throw new RangeError('pieceBytes must be a positive integer');
  if (sealed.length < GCM_TAG_BYTES) throw new AeadError();
  const length = sealed.length - GCM_TAG_BYTES;
  const d = withKey(key, (k) => createDecipheriv('aes-256-gcm', k, ZERO_NONCE));
  if (aad) d.setAAD(aad);
  d.setAuthTag(sealed.subarray(length));
  for (let i = 0; i < length; i += pieceBytes) {
    sealed.set(d.update(sealed.subarray(i, Math.min(length, i + pieceBytes))), i);
  }
  try {
    d.final();
  } catch {
    throw new AeadError();
  }
  return sealed.subarray(0, length);
}

/** The ChaCha constants, "expand 32-byte k", as little-endian words. */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

/**
 * Scratch for xchacha(): the key and nonce words hchacha reads, the subkey it
 * writes, and the ChaCha20-Poly1305 nonce, in one buffer allocated once.
 * Fresh typed arrays of 16–32 bytes live on V8's heap, and handing one to
 * node:crypto (or reading its `.buffer`) moves it to memory of its own, one
 * malloc each: three to five per directory node sealed or opened, some 50
 * of a small upload's thousand main-thread mallocs. Zeroed after every use.
 */
const XCHACHA_SCRATCH = new ArrayBuffer(92);
const scratchBytes = new Uint8Array(XCHACHA_SCRATCH);
const keyWords = new Uint32Array(XCHACHA_SCRATCH, 0, 8);
const nonceWords = new Uint32Array(XCHACHA_SCRATCH, 32, 4);
const subkeyWords = new Uint32Array(XCHACHA_SCRATCH, 48, 8);
const subkey = new Uint8Array(XCHACHA_SCRATCH, 48, 32);
const chachaNonce = new Uint8Array(XCHACHA_SCRATCH, 80, 12);

/**
 * Calls `make` with XChaCha20's subkey and the ChaCha20-Poly1305 nonce for a
 * 32-byte key and a 24-byte nonce, as views into the scratch, which is zeroed
 * as soon as `make` returns: `make` must use them at once (createCipheriv
 * copies its key and nonce).
 */
function xchacha<T>(key: Uint8Array, nonce: Uint8Array, make: (subkey: Uint8Array, nonce: Uint8Array) => T): T {
  if (key.length !== 32 || nonce.length !== XCHACHA_NONCE_BYTES) throw new RangeError('XChaCha20 needs a 32-byte key and a 24-byte nonce');
  try {
    // hchacha reads words as they lie in memory (it swaps on big-endian hosts itself): fill them bytewise.
    scratchBytes.set(key, 0);
    scratchBytes.set(nonce.subarray(0, 16), 32);
    hchacha(SIGMA, keyWords, nonceWords, subkeyWords);
    chachaNonce.set(nonce.subarray(16, 24), 4);
    return make(subkey, chachaNonce);
  } finally {
    scratchBytes.fill(0);
  }
}

/**
 * XChaCha20-Poly1305 with the given (normally random) nonce; output = nonce ‖
 * ciphertext ‖ tag, after `headroom` zero bytes left for the caller's own
 * header (a node blob's version byte), so that the blob is one buffer.
 */
export function sealRandomized(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array, headroom = 0): Uint8Array {
  const c = xchacha(key, nonce, (subkey, iv) => createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: XCHACHA_TAG_BYTES }));
  if (aad) c.setAAD(aad, { plaintextLength: plaintext.length });
  // A plain Uint8Array of its own (not a view into Buffer's shared pool): callers keep and pass it on.
  const out = new Uint8Array(headroom + XCHACHA_NONCE_BYTES + plaintext.length + XCHACHA_TAG_BYTES);
  const body = headroom + XCHACHA_NONCE_BYTES;
  out.set(nonce, headroom);
  const written = c.update(plaintext).copy(out, body) + c.final().copy(out, body + plaintext.length);
  // ChaCha20 is a stream cipher: update() returns exactly its input's length, final() nothing.
  if (written !== plaintext.length) throw new Error('ChaCha20-Poly1305 produced an unexpected length');
  c.getAuthTag().copy(out, body + plaintext.length);
  return out;
}

export function openRandomized(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
  if (sealed.length < XCHACHA_NONCE_BYTES + XCHACHA_TAG_BYTES) throw new AeadError();
  const nonce = sealed.subarray(0, XCHACHA_NONCE_BYTES);
  const d = xchacha(key, nonce, (subkey, iv) => createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: XCHACHA_TAG_BYTES }));
  const body = sealed.subarray(XCHACHA_NONCE_BYTES, sealed.length - XCHACHA_TAG_BYTES);
  if (aad) d.setAAD(aad, { plaintextLength: body.length });
  d.setAuthTag(sealed.subarray(sealed.length - XCHACHA_TAG_BYTES));
  const plaintext = d.update(body);
  try {
    d.final();
  } catch {
    throw new AeadError();
  }
  return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.length);
}
