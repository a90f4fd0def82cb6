import { createCipheriv, createDecipheriv } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';

/**
 * The two AEADs capstan uses.
 *
 * - AES-256-GCM (node:crypto, AES-NI) for immutable content: chunks and
 *   manifests. Their keys are convergent, derived from the plaintext itself,
 *   so one key only ever encrypts one plaintext and a fixed all-zero nonce is
 *   safe (same key ⇒ same plaintext ⇒ same ciphertext, which is the point).
 * - XChaCha20-Poly1305 (@noble/ciphers; node has no XChaCha) for mutable
 *   objects: directory nodes and sealed child write caps. One key encrypts
 *   many versions, so each gets a random 24-byte nonce, which is safe for
 *   XChaCha's nonce size and not for GCM's 12 bytes.
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

/** Pieces sealConvergent encrypts at a time by default: bounds its scratch memory beside the output. */
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
  const c = createCipheriv('aes-256-gcm', key, ZERO_NONCE);
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
  const d = createDecipheriv('aes-256-gcm', key, ZERO_NONCE);
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

/** XChaCha20-Poly1305 with the given (normally random) nonce; output = nonce ‖ ciphertext ‖ tag. */
export function sealRandomized(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  const ct = xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
  const out = new Uint8Array(nonce.length + ct.length);
  out.set(nonce, 0);
  out.set(ct, nonce.length);
  return out;
}

export function openRandomized(key: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
  if (sealed.length < XCHACHA_NONCE_BYTES + XCHACHA_TAG_BYTES) throw new AeadError();
  const nonce = sealed.subarray(0, XCHACHA_NONCE_BYTES);
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(sealed.subarray(XCHACHA_NONCE_BYTES));
  } catch {
    throw new AeadError();
  }
}
