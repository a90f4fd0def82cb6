import { createHash } from 'node:crypto';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { create as createDigest, equals as digestEquals } from 'multiformats/hashes/digest';
import { isSharedForOffload, sha256, sha256Owned, sha256Shared } from '../crypto/index.js';
import { IntegrityError, InvalidInputError } from '../errors.js';
import { encodeBase32 } from '../util/base32.js';
import type { ChunkAddress } from './chunks/chunk-store.js';

/** Multihash code of sha2-256; the only hash a chunk address may use. */
export const SHA2_256_CODE = 0x12;
const SHA2_256_BYTES = 32;

/**
 * The largest chunk any store accepts. The tree layer's chunker stays far
 * below it; the bound exists so that a get never allocates more than this for
 * one object, whatever a backend (or an attacker with write access to it)
 * holds under an address.
 */
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * The address of `bytes`: CIDv1, raw codec, sha2-256. The digest comes from
 * node:crypto (OpenSSL, several times faster than a JS sha256 on MiB-sized
 * chunks); multiformats only wraps it.
 */
export function addressOf(bytes: Uint8Array): ChunkAddress {
  return addressOfDigest(new Uint8Array(createHash('sha256').update(bytes).digest()));
}

function addressOfDigest(sha256: Uint8Array): ChunkAddress {
  return CID.create(1, raw.code, createDigest(SHA2_256_CODE, sha256));
}

/**
 * addressOf, with a large view into shared memory (a chunk the seal worker
 * sealed into its slot) hashed on an offload thread (crypto/offload.ts), so
 * the event loop, which also runs ssh2, does not spend a SHA-256 pass per
 * uploaded byte on it. Anything else is hashed here, at once. The caller
 * MUST NOT change `bytes` until this settles.
 */
export function addressOfChunk(bytes: Uint8Array): ChunkAddress | Promise<ChunkAddress> {
  if (!isSharedForOffload(bytes)) return addressOf(bytes);
  return sha256Shared(bytes).then(addressOfDigest);
}

/** The strings addressKey made, per address object (the tree asks for the same few again and again). */
const keys = new WeakMap<ChunkAddress, string>();

/**
 * `address.toString()`, the same string (CIDv1's default form: 'b' and the
 * base32 of its bytes), for the keys of maps and locks on the paths every
 * upload takes: multiformats' toString costs 5–9 µs and a few KiB of garbage
 * the first time per CID object (util/base32.ts), this about 1 µs.
 */
export function addressKey(address: ChunkAddress): string {
  let key = keys.get(address);
  if (key === undefined) {
    key = `b${encodeBase32(address.bytes)}`;
    keys.set(address, key);
  }
  return key;
}

/** True when `address` has the one shape capstan writes: CIDv1, raw, 32-byte sha2-256. */
export function isChunkAddress(address: unknown): address is ChunkAddress {
  const cid = CID.asCID(address);
  return (
    cid !== null &&
    cid.version === 1 &&
    cid.code === raw.code &&
    cid.multihash.code === SHA2_256_CODE &&
    cid.multihash.size === SHA2_256_BYTES
  );
}

/**
 * Throws InvalidInputError unless `address` is a capstan chunk address.
 *
 * A well-formed CID of another kind is malformed *input* (the caller built or
 * decoded a wrong address), not an integrity failure: no stored bytes are at
 * fault, and reporting IntegrityError would send an operator looking for bit
 * rot that is not there.
 */
export function assertChunkAddress(address: unknown): asserts address is ChunkAddress {
  if (!isChunkAddress(address)) {
    throw new InvalidInputError('not a chunk address (want CIDv1, raw codec, sha2-256)');
  }
}

/**
 * Throws IntegrityError (naming the address) unless `bytes` hash to `address`.
 * An address of the wrong kind is InvalidInputError, see assertChunkAddress.
 */
export function verifyChunk(address: ChunkAddress, bytes: Uint8Array): void {
  assertChunkAddress(address);
  checkDigest(address, createHash('sha256').update(bytes).digest());
}

/**
 * verifyChunk for bytes the caller gives up (a chunk store's own read
 * buffer): large ones are hashed on a thread (src/crypto/offload.ts).
 * Answers the bytes: use that view, as `bytes` is detached if it went.
 */
export async function verifyOwnedChunk(address: ChunkAddress, bytes: Uint8Array): Promise<Uint8Array> {
  assertChunkAddress(address);
  const hashed = await sha256Owned(bytes);
  checkDigest(address, hashed.digest);
  return hashed.bytes;
}

/**
 * verifyChunk for bytes that stay where they lie (a reader's reused buffer):
 * a large view into shared memory is hashed on a thread, with nothing copied
 * or transferred (sha256Shared). The caller MUST NOT change `bytes` until
 * this settles.
 */
export async function verifyChunkInPlace(address: ChunkAddress, bytes: Uint8Array): Promise<void> {
  assertChunkAddress(address);
  checkDigest(address, isSharedForOffload(bytes) ? await sha256Shared(bytes) : sha256(bytes));
}

/**
 * verifyChunk for bytes whose SHA-256 was computed as they were read
 * (PackSink.readIntoHashed): IntegrityError unless `sha256` is the address's.
 */
export function verifyChunkDigest(address: ChunkAddress, sha256: Uint8Array): void {
  assertChunkAddress(address);
  checkDigest(address, sha256);
}

function checkDigest(address: ChunkAddress, sha256: Uint8Array): void {
  if (!digestEquals(createDigest(SHA2_256_CODE, sha256), address.multihash)) throw new IntegrityError(address.toString(), 'chunk');
}

/** Longest string worth handing to the CID parser; a base32 chunk CID is 59 characters. */
const MAX_ADDRESS_STRING = 128;

/**
 * Parses a chunk address from its string form (any multibase the CID parser
 * knows without a base argument: base32 `b…`, which is what toString() gives,
 * or base58btc `z…`). Junk, CIDv0 and CIDs of another codec or hash are
 * InvalidInputError; the message never echoes the input.
 */
export function parseAddress(text: string): ChunkAddress {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_ADDRESS_STRING) {
    throw new InvalidInputError('not a chunk address: wrong length');
  }
  let cid: CID;
  try {
    cid = CID.parse(text);
  } catch (err) {
    throw new InvalidInputError('not a chunk address: does not parse as a CID', { cause: err });
  }
  assertChunkAddress(cid);
  return cid;
}

/**
 * The address a store file or object is named after, or undefined when the
 * name is not one. Only the canonical spelling (base32, as toString() gives
 * it) counts, so a listing never yields one chunk twice.
 */
export function addressFromName(name: string): ChunkAddress | undefined {
  if (!name.startsWith('b')) return undefined;
  try {
    const address = parseAddress(name);
    return address.toString() === name ? address : undefined;
  } catch {
    return undefined;
  }
}
