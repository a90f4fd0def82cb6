import { AeadError, openConvergent, sealConvergent, sha256 } from '../../crypto/index.js';
import { IntegrityError, type AbortOptions } from '../../errors.js';
import type { ChunkAddress, ChunkStore } from '../../store/chunks/chunk-store.js';
import type { Checksums } from '../api.js';
import {
  ADDRESS_BYTES,
  CHECKSUM_MD5,
  CHECKSUM_SHA1,
  CHUNK_KEY_BYTES,
  addressSectionLength,
  checksumBytes,
  decodeAddressEntry,
  decodeHeader,
  encodeHeader,
  headerLength,
  isAddressEntry,
  manifestAddressOf,
  manifestLength,
  type ManifestHeader,
} from './format.js';

/**
 * Manifest v1 and v2 (authoritative; see docs/spec/files.md):
 *
 *     header     21 bytes (v1) or 22 (v2: ‖ checksum set m), in the clear (format.ts)
 *     addresses  sealConvergent(V, n × 36-byte chunk CID, aad = header)
 *     keys       sealConvergent(K, n × 32-byte chunk key ‖ sha256 [‖ md5] [‖ sha1], aad = header)
 *
 * v1 records all three digests; v2 only those in m. The checksum set comes
 * from the Checksums given (checksumsSet), so header and sections agree.
 *
 * Two sections under two keys so that a verify-cap holder (V only) can list
 * and check every chunk without being able to decrypt any of them. Both are
 * bound to the header through the AAD, so a header edited to match a
 * different size or chunk size fails authentication as well as the hash.
 */

export interface ManifestContent {
  header: ManifestHeader;
  /** n × ADDRESS_BYTES, binary CIDs in chunk order. */
  addresses: Uint8Array;
  /** n × CHUNK_KEY_BYTES in chunk order. */
  keys: Uint8Array;
  checksums: Checksums;
}

/** The checksum set m of the digests `sums` holds. */
export function checksumsSet(sums: Checksums): number {
  return (sums.md5 !== undefined ? CHECKSUM_MD5 : 0) | (sums.sha1 !== undefined ? CHECKSUM_SHA1 : 0);
}

/** The manifest bytes; `manifestKey` MUST be deriveManifestKey(…, checksumsSet(content.checksums)). */
export function encodeManifest(manifestKey: Uint8Array, verifyKey: Uint8Array, content: ManifestContent): Uint8Array {
  const { header, addresses, keys, checksums } = content;
  const n = header.chunkCount;
  if (addresses.length !== n * ADDRESS_BYTES || keys.length !== n * CHUNK_KEY_BYTES) {
    throw new RangeError('manifest sections do not match the chunk count');
  }
  const m = checksumsSet(checksums);
  const headerBytes = encodeHeader({ ...header, checksums: m });
  const keyPlain = new Uint8Array(n * CHUNK_KEY_BYTES + checksumBytes(m));
  keyPlain.set(keys, 0);
  let at = n * CHUNK_KEY_BYTES;
  for (const digest of [checksums.sha256, checksums.md5, checksums.sha1]) {
    if (digest === undefined) continue;
    keyPlain.set(digest, at);
    at += digest.length;
  }
  if (at !== keyPlain.length) throw new RangeError('a checksum has the wrong length');
  const out = new Uint8Array(manifestLength(n, m));
  out.set(headerBytes, 0);
  out.set(sealConvergent(verifyKey, addresses, headerBytes), headerBytes.length);
  out.set(sealConvergent(manifestKey, keyPlain, headerBytes), headerBytes.length + addressSectionLength(n));
  return out;
}

/** A manifest fetched and checked against its cap, sections still sealed. */
export interface SealedManifest {
  address: ChunkAddress;
  /** The manifest's CID string, what IntegrityError names. */
  id: string;
  header: Required<ManifestHeader>;
  bytes: Uint8Array;
}

/**
 * Fetches the manifest a cap names and checks, before decrypting or
 * allocating anything from it: its sha256 equals the cap's manifestHash (the
 * store checks the CID too; this does not trust it to), the header is
 * consistent with itself and with the cap's size, and the length is exactly
 * what the header's chunk count implies. The store bounds the fetch itself
 * (MAX_CHUNK_BYTES), so a hostile header cannot make a reader allocate more.
 */
export async function fetchManifest(
  store: ChunkStore,
  manifestHash: Uint8Array,
  size: number,
  options: AbortOptions = {},
): Promise<SealedManifest> {
  const address = manifestAddressOf(manifestHash);
  const id = address.toString();
  const bytes = await store.get(address, options);
  if (!bytesEqual(sha256(bytes), manifestHash)) throw new IntegrityError(id, 'manifest');
  const header = decodeHeader(bytes, size);
  if (header === undefined || bytes.length !== manifestLength(header.chunkCount, header.checksums)) {
    throw new IntegrityError(id, 'manifest');
  }
  return { address, id, header, bytes };
}

/** Decrypts the address section with V and checks every entry's shape; IntegrityError on any fault. */
export function openAddressSection(manifest: SealedManifest, verifyKey: Uint8Array): Uint8Array {
  const { header, bytes, id } = manifest;
  const headerBytes = headerLength(header.checksums);
  const sealed = bytes.subarray(headerBytes, headerBytes + addressSectionLength(header.chunkCount));
  const addresses = open(verifyKey, sealed, bytes.subarray(0, headerBytes), id);
  for (let i = 0; i < header.chunkCount; i++) {
    if (!isAddressEntry(addresses.subarray(i * ADDRESS_BYTES, (i + 1) * ADDRESS_BYTES))) {
      throw new IntegrityError(id, 'manifest');
    }
  }
  return addresses;
}

/** Decrypts the key section with K; the checksums are those the manifest records. */
export function openKeySection(manifest: SealedManifest, manifestKey: Uint8Array): { keys: Uint8Array; checksums: Checksums } {
  const { header, bytes, id } = manifest;
  const headerBytes = headerLength(header.checksums);
  const sealed = bytes.subarray(headerBytes + addressSectionLength(header.chunkCount));
  const plain = open(manifestKey, sealed, bytes.subarray(0, headerBytes), id);
  let at = header.chunkCount * CHUNK_KEY_BYTES;
  const next = (length: number): Uint8Array => plain.slice(at, (at += length));
  const checksums: Checksums = { sha256: next(32) };
  if (header.checksums & CHECKSUM_MD5) checksums.md5 = next(16);
  if (header.checksums & CHECKSUM_SHA1) checksums.sha1 = next(20);
  return { keys: plain.subarray(0, header.chunkCount * CHUNK_KEY_BYTES), checksums };
}

export function addressAt(addresses: Uint8Array, index: number): ChunkAddress {
  return decodeAddressEntry(addresses.subarray(index * ADDRESS_BYTES, (index + 1) * ADDRESS_BYTES));
}

function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array, id: string): Uint8Array {
  try {
    const plain = openConvergent(key, sealed, aad);
    // A plain Uint8Array view: Buffer#slice does not copy, Uint8Array#slice does, and callers rely on that.
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.length);
  } catch (err) {
    if (err instanceof AeadError) throw new IntegrityError(id, 'manifest');
    throw err;
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
