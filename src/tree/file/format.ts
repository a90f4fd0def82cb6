import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { create as createDigest } from 'multiformats/hashes/digest';
import { GCM_TAG_BYTES, TAG, taggedHash, taggedHmac, u64be } from '../../crypto/index.js';
import { LITERAL_MAX_BYTES } from '../../cap/index.js';
import { MAX_CHUNK_BYTES, SHA2_256_CODE } from '../../store/address.js';
import type { ChunkAddress } from '../../store/chunks/chunk-store.js';

/**
 * Immutable-file format v1 (manifest v1 and v2): constants, key derivations
 * and the manifest header. docs/spec/files.md describes it in prose; this file (with
 * manifest.ts, and chunk-sealer.ts for the chunk key and sealing) is
 * authoritative. Everything here is frozen by
 * test/vectors/files.json: changing a byte of the layout or a derivation is a
 * new format version, not an edit.
 */

/** "CSFM": capstan file manifest. */
export const MANIFEST_MAGIC = Uint8Array.of(0x43, 0x53, 0x46, 0x4d);
/** v1 records all three digests; v2 (docs/spec/files.md "Manifest v2") a smaller set. */
export const MANIFEST_VERSION = 1;
export const MANIFEST_VERSION_V2 = 2;
/** v1: magic 4 ‖ version 1 ‖ chunkSize u32be ‖ size u64be ‖ chunkCount u32be. */
export const HEADER_BYTES = 4 + 1 + 4 + 8 + 4;
/** v2: the v1 fields ‖ checksum set u8. */
export const HEADER_BYTES_V2 = HEADER_BYTES + 1;

/**
 * The checksum set `m` of a manifest: which digests besides SHA-256 it
 * records. Bit 0 MD5, bit 1 SHA-1. ALL_CHECKSUMS is what v1 records (and
 * what a v2 header must never state: one encoding per file).
 */
export const CHECKSUM_MD5 = 0x01;
export const CHECKSUM_SHA1 = 0x02;
export const ALL_CHECKSUMS = CHECKSUM_MD5 | CHECKSUM_SHA1;

/** d(m): bytes of the digests a manifest with checksum set `m` records. */
export function checksumBytes(m: number): number {
  return 32 + (m & CHECKSUM_MD5 ? 16 : 0) + (m & CHECKSUM_SHA1 ? 20 : 0);
}

/** The checksum set of a list of algorithms; RangeError unless it holds sha256 and nothing unknown. */
export function checksumSetOf(algorithms: readonly string[]): number {
  if (!algorithms.includes('sha256')) throw new RangeError('the recorded checksums must include sha256');
  let m = 0;
  for (const a of algorithms) {
    if (a === 'md5') m |= CHECKSUM_MD5;
    else if (a === 'sha1') m |= CHECKSUM_SHA1;
    else if (a !== 'sha256') throw new RangeError(`unknown checksum ${JSON.stringify(a)}`);
  }
  return m;
}

export function headerLength(m: number): number {
  return m === ALL_CHECKSUMS ? HEADER_BYTES : HEADER_BYTES_V2;
}

/** A chunk address in binary CID form: 0x01 0x55 0x12 0x20 ‖ sha256(ciphertext). */
export const ADDRESS_BYTES = 36;
const ADDRESS_PREFIX = Uint8Array.of(0x01, raw.code, SHA2_256_CODE, 0x20);
export const CHUNK_KEY_BYTES = 32;
/** sha256 32 ‖ md5 16 ‖ sha1 20, of the whole plaintext: what a v1 manifest records. */
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

/** Bytes of a manifest describing `chunkCount` chunks with checksum set `m` (default: v1). */
export function manifestLength(chunkCount: number, m = ALL_CHECKSUMS): number {
  return headerLength(m) + addressSectionLength(chunkCount) + keySectionLength(chunkCount, m);
}
export function addressSectionLength(chunkCount: number): number {
  return chunkCount * ADDRESS_BYTES + GCM_TAG_BYTES;
}
export function keySectionLength(chunkCount: number, m = ALL_CHECKSUMS): number {
  return chunkCount * CHUNK_KEY_BYTES + checksumBytes(m) + GCM_TAG_BYTES;
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
  /** The checksum set `m`; absent means ALL_CHECKSUMS, a v1 header. */
  checksums?: number;
}

export function isValidChunkSize(chunkSize: number): boolean {
  return Number.isSafeInteger(chunkSize) && chunkSize >= MIN_CHUNK_SIZE && chunkSize <= MAX_CHUNK_SIZE;
}

/** Plaintext length of chunk `index`: chunkSize for all but the last. */
export function chunkLength(header: ManifestHeader, index: number): number {
  return index < header.chunkCount - 1 ? header.chunkSize : header.size - (header.chunkCount - 1) * header.chunkSize;
}

/** A v1 header when the set is ALL_CHECKSUMS (or absent), else a v2 header carrying it. */
export function encodeHeader(header: ManifestHeader): Uint8Array {
  const m = header.checksums ?? ALL_CHECKSUMS;
  if (!Number.isInteger(m) || m < 0 || m > ALL_CHECKSUMS) throw new RangeError('invalid checksum set');
  const out = new Uint8Array(headerLength(m));
  const view = new DataView(out.buffer);
  out.set(MANIFEST_MAGIC, 0);
  out[4] = m === ALL_CHECKSUMS ? MANIFEST_VERSION : MANIFEST_VERSION_V2;
  view.setUint32(5, header.chunkSize);
  view.setBigUint64(9, BigInt(header.size));
  view.setUint32(17, header.chunkCount);
  if (m !== ALL_CHECKSUMS) out[HEADER_BYTES] = m;
  return out;
}

/**
 * Parses and checks a header against the size the cap promises, using only
 * arithmetic on the fixed 21 (v1) or 22 (v2) bytes: nothing is allocated
 * from a field before every field is known consistent. Returns undefined on
 * any inconsistency (the caller reports IntegrityError for the object). The
 * result always carries the checksum set (ALL_CHECKSUMS for v1).
 */
export function decodeHeader(bytes: Uint8Array, expectedSize: number): Required<ManifestHeader> | undefined {
  if (bytes.length < HEADER_BYTES) return undefined;
  for (let i = 0; i < MANIFEST_MAGIC.length; i++) if (bytes[i] !== MANIFEST_MAGIC[i]) return undefined;
  let checksums = ALL_CHECKSUMS;
  if (bytes[4] === MANIFEST_VERSION_V2) {
    if (bytes.length < HEADER_BYTES_V2) return undefined;
    checksums = bytes[HEADER_BYTES]!;
    // ALL_CHECKSUMS is v1's encoding; anything above it has unknown bits.
    if (checksums >= ALL_CHECKSUMS) return undefined;
  } else if (bytes[4] !== MANIFEST_VERSION) {
    return undefined;
  }
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
  return { chunkSize, size, chunkCount, checksums };
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

/**
 * K = HMAC(convergence, "capstan-v1:chk:manifest-key", u64be(size), u32be(chunkSize), sha256(file))
 * for a v1 manifest (checksum set ALL_CHECKSUMS); for v2,
 * HMAC(convergence, "capstan-v2:chk:manifest-key", u64be(size), u32be(chunkSize), u8(m), sha256(file)),
 * so a v1 and a v2 manifest of one file never share a key (both seal with the zero nonce).
 */
export function deriveManifestKey(
  convergence: Uint8Array,
  size: number,
  chunkSize: number,
  fileSha256: Uint8Array,
  checksums = ALL_CHECKSUMS,
): Uint8Array {
  if (checksums === ALL_CHECKSUMS) return taggedHmac(convergence, TAG.manifestKey, u64be(size), u32be(chunkSize), fileSha256);
  return taggedHmac(convergence, TAG.manifestKeyV2, u64be(size), u32be(chunkSize), Uint8Array.of(checksums), fileSha256);
}

/** V = H("capstan-v1:chk:manifest-verify-key", K); the same derivation as FileReadCap.verifyKey. */
export function deriveVerifyKey(manifestKey: Uint8Array): Uint8Array {
  return taggedHash(TAG.manifestVerifyKey, manifestKey);
}
