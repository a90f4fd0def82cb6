import { TAG, netstring, verifySignature, type SigningKey } from '../../crypto/index.js';
import { IntegrityError } from '../../errors.js';
import { storageIndexOf } from '../../cap/index.js';
import type { ChunkAddress } from '../../store/chunks/chunk-store.js';
import type { SlotEntry } from '../../store/slots/slot-store.js';
import { ByteReader, ByteWriter, FormatError } from './bytes.js';
import { decodeAddress } from './node-format.js';

/**
 * Slot records: the authoritative code for docs/spec/slots.md.
 *
 *     v1: 0x01 ‖ SI (32) ‖ seq (u64 BE) ‖ u8 len ‖ root node CID (len bytes) ‖ signature (64)
 *     v2: 0x02 ‖ SI (32) ‖ seq (u64 BE) ‖ u8 flags ‖ u8 len ‖ root node CID ‖ signature (64)
 *     signed  = netstring(tag of the version) ‖ record without its last 64 bytes
 *     signature = Ed25519(directory signing key, signed)
 *
 * v2 exists for its flags: bit 0 marks a sealed version (the directory was
 * removed by rmdir and takes no further changes); bit 1 marks a shared
 * directory (a write link to it was made by `capstan ln`, so it may have
 * several names, and rmdir of one name must not seal it; every later version
 * keeps the bit). Writers write v1 for every version with no flag set, so
 * directories never removed or shared are byte for byte what the first
 * writers made.
 *
 * The slot store keeps the record opaque; everything here is checked by the
 * reader, so the store can withhold or roll back a directory but never make a
 * reader accept a version the signing key did not sign.
 */
export const SLOT_FORMAT_VERSION = 1;
export const SLOT_FORMAT_V2 = 2;
const FLAG_SEALED = 0x01;
const FLAG_SHARED = 0x02;
const KNOWN_FLAGS = FLAG_SEALED | FLAG_SHARED;
const SIGNATURE_BYTES = 64;
const encoder = new TextEncoder();
const SIGNATURE_PREFIX = netstring(encoder.encode(TAG.slotSignature));
const SIGNATURE_PREFIX_V2 = netstring(encoder.encode(TAG.slotSignatureV2));

export interface SlotVersion {
  seq: bigint;
  root: ChunkAddress;
  /** The directory was removed (a v2 record with the sealed flag): no version may follow. */
  sealed: boolean;
  /** Linked under other names by `capstan ln` (a v2 record with the shared flag): rmdir of a name never seals it. */
  shared: boolean;
}

function signedMessage(prefix: Uint8Array, body: Uint8Array): Uint8Array {
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix, 0);
  message.set(body, prefix.length);
  return message;
}

export function encodeSlotRecord(signingKey: SigningKey, storageIndex: Uint8Array, version: SlotVersion): Uint8Array {
  const cid = version.root.bytes;
  const writer = new ByteWriter(2 + 32 + 8 + 1 + cid.length + SIGNATURE_BYTES);
  const flags = (version.sealed ? FLAG_SEALED : 0) | (version.shared ? FLAG_SHARED : 0);
  if (flags !== 0) writer.u8(SLOT_FORMAT_V2).bytes(storageIndex).u64(version.seq).u8(flags);
  else writer.u8(SLOT_FORMAT_VERSION).bytes(storageIndex).u64(version.seq);
  const body = writer.u8(cid.length).bytes(cid).finish();
  const signature = signingKey.sign(signedMessage(flags !== 0 ? SIGNATURE_PREFIX_V2 : SIGNATURE_PREFIX, body));
  const record = new Uint8Array(body.length + SIGNATURE_BYTES);
  record.set(body, 0);
  record.set(signature, body.length);
  return record;
}

/**
 * Checks a slot entry read back for the directory whose public key is
 * `publicKey`, and returns the version it names. Every check failing is the
 * same IntegrityError naming the storage index in hex: the record's version
 * byte, flags and length, SI = storage index of `publicKey` (a record copied
 * from another slot fails here), the signature, and the record's seq equal to
 * the entry's seq (a store cannot relabel an old record as new).
 */
export function verifySlotRecord(publicKey: Uint8Array, siHex: string, entry: SlotEntry): SlotVersion {
  const fail = (): never => {
    throw new IntegrityError(siHex, 'slot');
  };
  const record = entry.record;
  if (!(record instanceof Uint8Array) || record.length < 1 + 32 + 8 + 1 + SIGNATURE_BYTES) return fail();
  const body = record.subarray(0, record.length - SIGNATURE_BYTES);
  const signature = record.subarray(record.length - SIGNATURE_BYTES);
  let version: SlotVersion;
  let prefix: Uint8Array;
  try {
    const r = new ByteReader(body);
    const format = r.u8();
    if (format !== SLOT_FORMAT_VERSION && format !== SLOT_FORMAT_V2) return fail();
    const si = r.bytes(32);
    if (Buffer.compare(si, storageIndexOf(publicKey)) !== 0) return fail();
    const seq = r.u64();
    let flags = 0;
    if (format === SLOT_FORMAT_V2) {
      flags = r.u8();
      if ((flags & ~KNOWN_FLAGS) !== 0) return fail();
    }
    const root = decodeAddress(r.bytes(r.u8()));
    r.end();
    version = { seq, root, sealed: (flags & FLAG_SEALED) !== 0, shared: (flags & FLAG_SHARED) !== 0 };
    prefix = format === SLOT_FORMAT_V2 ? SIGNATURE_PREFIX_V2 : SIGNATURE_PREFIX;
  } catch (err) {
    if (err instanceof FormatError) return fail();
    throw err;
  }
  if (!verifySignature(publicKey, signedMessage(prefix, body), signature)) return fail();
  if (version.seq !== entry.seq) return fail();
  return version;
}
