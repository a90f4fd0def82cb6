import { TAG, netstring, verifySignature, type SigningKey } from '../../crypto/index.js';
import { IntegrityError } from '../../errors.js';
import { storageIndexOf } from '../../cap/index.js';
import type { ChunkAddress } from '../../store/chunk-store.js';
import type { SlotEntry } from '../../store/slot-store.js';
import { ByteReader, ByteWriter, FormatError } from './bytes.js';
import { decodeAddress } from './node-format.js';

/**
 * Slot record format v1: the authoritative code for docs/spec/slots.md.
 *
 *     record  = 0x01 ‖ SI (32) ‖ seq (u64 BE) ‖ u8 len ‖ root node CID (len bytes) ‖ signature (64)
 *     signed  = netstring("capstan-v1:slot:signature") ‖ record without its last 64 bytes
 *     signature = Ed25519(directory signing key, signed)
 *
 * The slot store keeps the record opaque; everything here is checked by the
 * reader, so the store can withhold or roll back a directory but never make a
 * reader accept a version the signing key did not sign.
 */
export const SLOT_FORMAT_VERSION = 1;
const SIGNATURE_BYTES = 64;
const encoder = new TextEncoder();
const SIGNATURE_PREFIX = netstring(encoder.encode(TAG.slotSignature));

export interface SlotVersion {
  seq: bigint;
  root: ChunkAddress;
}

function signedMessage(body: Uint8Array): Uint8Array {
  const message = new Uint8Array(SIGNATURE_PREFIX.length + body.length);
  message.set(SIGNATURE_PREFIX, 0);
  message.set(body, SIGNATURE_PREFIX.length);
  return message;
}

export function encodeSlotRecord(signingKey: SigningKey, storageIndex: Uint8Array, version: SlotVersion): Uint8Array {
  const cid = version.root.bytes;
  const body = new ByteWriter(1 + 32 + 8 + 1 + cid.length + SIGNATURE_BYTES)
    .u8(SLOT_FORMAT_VERSION)
    .bytes(storageIndex)
    .u64(version.seq)
    .u8(cid.length)
    .bytes(cid)
    .finish();
  const signature = signingKey.sign(signedMessage(body));
  const record = new Uint8Array(body.length + SIGNATURE_BYTES);
  record.set(body, 0);
  record.set(signature, body.length);
  return record;
}

/**
 * Checks a slot entry read back for the directory whose public key is
 * `publicKey`, and returns the version it names. Every check failing is the
 * same IntegrityError naming the storage index in hex: the record's version
 * byte and length, SI = storage index of `publicKey` (a record copied from
 * another slot fails here), the signature, and the record's seq equal to the
 * entry's seq (a store cannot relabel an old record as new).
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
  try {
    const r = new ByteReader(body);
    if (r.u8() !== SLOT_FORMAT_VERSION) return fail();
    const si = r.bytes(32);
    if (Buffer.compare(si, storageIndexOf(publicKey)) !== 0) return fail();
    const seq = r.u64();
    const root = decodeAddress(r.bytes(r.u8()));
    r.end();
    version = { seq, root };
  } catch (err) {
    if (err instanceof FormatError) return fail();
    throw err;
  }
  if (!verifySignature(publicKey, signedMessage(body), signature)) return fail();
  if (version.seq !== entry.seq) return fail();
  return version;
}
