import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { create as createDigest } from 'multiformats/hashes/digest';
import { GCM_TAG_BYTES, TAG, taggedHash, taggedHmac, u64be } from '../../crypto/index.js';
import { LITERAL_MAX_BYTES } from '../../cap/index.js';
import { MAX_CHUNK_BYTES, SHA2_256_CODE } from '../../store/address.js';
import type { ChunkAddress } from '../../store/chunks/chunk-store.js';

/**
 * Immutable-file format v1: constants, key derivations and the manifest
 * header. docs/spec/files.md describes it in prose; this file (with
 * manifest.ts, and chunk-sealer.ts for the chunk key and sealing) is
 * authoritative. Everything here is frozen by
 * test/vectors/files.json: changing a byte of the layout or a derivation is a
 * new format version, not an edit.
 */

/** "CSFM": capstan file manifest. */
export const MANIFEST_MAGIC = Uint8Array.of(0x43, 0x53, 0x46, 0x4d);
export const MANIFEST_VERSION = 1;
/** magic 4 ‖ version 1 ‖ chunkSize u32be ‖ size u64be ‖ chunkCount u32be. */
export const HEADER_BYTES = 4 + 1 + 4 + 8 + 4;

/** A chunk address in binary CID form: 0x01 0x55 0x12 0x20 ‖ sha256(ciphertext). */
export const ADDRESS_BYTES = 36;
const ADDRESS_PREFIX = Uint8Array.of(0x01, raw.code, SHA2_256_CODE, 0x20);
export const CHUNK_KEY_BYTES = 32;
/** sha256 32 ‖ md5 16 ‖ sha1 20, of the whole plaintext. */
export const CHECKSUM_BYTES = 32 + 16 + 20;

/**
 * Chunk sizes a v1 manifest may state. The floor keeps the per-chunk overhead
 * (68 manifest bytes, a 16-byte tag, one store object) small next to the
 * content; the ceiling is the store's object bound less the GCM tag, so every
 * sealed chunk is something any ChunkStore accepts.
 */
export const MIN_CHUNK_SIZE = 4 * 1024;
export const MAX_CHUNK_SIZE = MAX_CHUNK_BYTES - GCM_TAG_BYTES;

/**
 * Default chunk size: 1 MiB. Measured in docs/spec/files.md ("Chunk size"):
 * 256 KiB pays the per-object cost (an fsync, a remote request) four times
 * as often and loses a third of the upload rate; 4 MiB gains little, costs
 * 4× the memory per upload, and makes a random 32 KiB SFTP read decrypt
 * 4 MiB. The price is a 241 GiB file-size limit (MAX_CHUNK_COUNT).
 */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;

/** Bytes of a v1 manifest describing `chunkCount` chunks. */
export function manifestLength(chunkCount: number): number {
  return HEADER_BYTES + addressSectionLength(chunkCount) + keySectionLength(chunkCount);
}
export function addressSectionLength(chunkCount: number): number {
  return chunkCount * ADDRESS_BYTES + GCM_TAG_BYTES;
}
export function keySectionLength(chunkCount: number): number {
  return chunkCount * CHUNK_KEY_BYTES + CHECKSUM_BYTES + GCM_TAG_BYTES;
}

/**
 * The most chunks one v1 manifest can list: the manifest is a single stored
 * object, so it obeys the store's MAX_CHUNK_BYTES. 246,721 chunks, i.e. about
 * 241 GiB at 1 MiB chunks. A larger file needs a manifest tree (format v2).
 */
export const MAX_CHUNK_COUNT = Math.floor(
  (MAX_CHUNK_BYTES - HEADER_BYTES - 2 * GCM_TAG_BYTES - CHECKSUM_BYTES) / (ADDRESS_BYTES + CHUNK_KEY_BYTES),
);

export function maxFileSize(chunkSize: number): number {
  return MAX_CHUNK_COUNT * chunkSize;
}

export interface ManifestHeader {
  chunkSize: number;
  size: number;
  chunkCount: number;
}

export function isValidChunkSize(chunkSize: number): boolean {
  return Number.isSafeInteger(chunkSize) && chunkSize >= MIN_CHUNK_SIZE && chunkSize <= MAX_CHUNK_SIZE;
}

/** Plaintext length of chunk `index`: chunkSize for all but the last. */
export function chunkLength(header: ManifestHeader, index: number): number {
  return index < header.chunkCount - 1 ? header.chunkSize : header.size - (header.chunkCount - 1) * header.chunkSize;
}

export function encodeHeader(header: ManifestHeader): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(MANIFEST_MAGIC, 0);
  out[4] = MANIFEST_VERSION;
  view.setUint32(5, header.chunkSize);
  view.setBigUint64(9, BigInt(header.size));
  view.setUint32(17, header.chunkCount);
  return out;
}

/**
 * Parses and checks a header against the size the cap promises, using only
 * arithmetic on the fixed 21 bytes: nothing is allocated from a field before
 * every field is known consistent. Returns undefined on any inconsistency
 * (the caller reports IntegrityError for the object).
 */
export function decodeHeader(bytes: Uint8Array, expectedSize: number): ManifestHeader | undefined {
  if (bytes.length < HEADER_BYTES) return undefined;
  for (let i = 0; i < MANIFEST_MAGIC.length; i++) if (bytes[i] !== MANIFEST_MAGIC[i]) return undefined;
  if (bytes[4] !== MANIFEST_VERSION) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const chunkSize = view.getUint32(5);
  const bigSize = view.getBigUint64(9);
  const chunkCount = view.getUint32(17);
  if (!isValidChunkSize(chunkSize)) return undefined;
  if (bigSize > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const size = Number(bigSize);
  // ≤ 64 bytes is always a literal cap: one encoding per file, so one cap per file.
  if (size !== expectedSize || size <= LITERAL_MAX_BYTES) return undefined;
  if (chunkCount !== Math.ceil(size / chunkSize) || chunkCount > MAX_CHUNK_COUNT) return undefined;
  return { chunkSize, size, chunkCount };
}

/** True when `bytes` (36 long) is a CIDv1/raw/sha2-256 in binary form. */
export function isAddressEntry(bytes: Uint8Array): boolean {
  if (bytes.length !== ADDRESS_BYTES) return false;
  for (let i = 0; i < ADDRESS_PREFIX.length; i++) if (bytes[i] !== ADDRESS_PREFIX[i]) return false;
  return true;
}

export function decodeAddressEntry(bytes: Uint8Array): ChunkAddress {
  return CID.decode(new Uint8Array(bytes)) as ChunkAddress;
}

/** The manifest's store address: the cap's manifestHash is exactly its sha2-256 digest. */
export function manifestAddressOf(manifestHash: Uint8Array): ChunkAddress {
  return CID.create(1, raw.code, createDigest(SHA2_256_CODE, manifestHash));
}

export function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

// k_i, the chunk key: with the sealer that uses it, so the seal worker loads only that.
export { deriveChunkKey } from './chunk-sealer.js';

/** K = HMAC(convergence, "capstan-v1:chk:manifest-key", u64be(size), u32be(chunkSize), sha256(file)). */
export function deriveManifestKey(convergence: Uint8Array, size: number, chunkSize: number, fileSha256: Uint8Array): Uint8Array {
  return taggedHmac(convergence, TAG.manifestKey, u64be(size), u32be(chunkSize), fileSha256);
}

/** V = H("capstan-v1:chk:manifest-verify-key", K); the same derivation as FileReadCap.verifyKey. */
export function deriveVerifyKey(manifestKey: Uint8Array): Uint8Array {
  return taggedHash(TAG.manifestVerifyKey, manifestKey);
}
