import {
  AeadError,
  TAG,
  XCHACHA_NONCE_BYTES,
  XCHACHA_TAG_BYTES,
  netstring,
  openRandomized,
  sealRandomized,
  taggedHmac,
  u64be,
} from '../crypto/index.js';
import { randomBytes } from '../crypto/random.js';
import { InvalidInputError, IntegrityError } from '../errors.js';
import { STORAGE_INDEX_BYTES } from '../store/slots/slot-limits.js';

/**
 * A home's slot: where, and in what bytes, the home of a user of a central
 * user directory is kept (docs/spec/homes.md is the specification; this file
 * is authoritative for it).
 *
 * Keys, from the 32-byte homes secret S (private/homes.secret, the same file
 * on every gateway of one system):
 *
 *     K_index = HMAC-SHA256(S, netstring(TAG.homeIndexKey))
 *     K_seal  = HMAC-SHA256(S, netstring(TAG.homeSealKey))
 *     prefix  = HMAC-SHA256(K_index, netstring(TAG.homeSlotPrefix))[0..8]
 *     SI(name) = prefix ‖ HMAC-SHA256(K_index, netstring(TAG.homeSlot) ‖ netstring(UTF-8 name))[0..24]
 *
 * The slot store sees SI and the sealed record only: without S it can tell
 * that a slot is a home (the shared prefix, the record's first byte), not
 * whose, nor its cap. With S, a process can pick the homes out of a listing
 * of all slots by the prefix, without reading a record.
 *
 * Record (version 0x11; a directory's slot record starts with 0x01):
 *
 *     0     1    version = 0x11
 *     1     24   nonce, random per record
 *     25    n    XChaCha20-Poly1305(K_seal, nonce, plaintext, aad) ‖ 16-byte tag
 *     aad = netstring(TAG.homeRecord) ‖ netstring(SI) ‖ netstring(u64be(seq))
 *
 * Plaintext:
 *
 *     0     1    state: 1 live, 2 revoked
 *     1     8    time of this version, ms since 1970 (u64 big-endian)
 *     9     2    L = name length (u16 BE), then L bytes of UTF-8 name
 *     11+L  2    C = cap length (u16 BE), then C bytes of the root cap (ASCII); C = 0 when revoked
 *
 * The aad binds a record to its slot and version, so the store cannot move a
 * record to another name's slot or serve it under another sequence number
 * without the open failing (it can still withhold or roll back whole
 * entries, as for directories).
 */

export const HOME_RECORD_VERSION = 0x11;
export const HOME_PREFIX_BYTES = 8;
/** Names as the user directory gives them: a user name, or an AWS HomeDirectory path. */
export const MAX_HOME_NAME_BYTES = 1024;
const MAX_CAP_BYTES = 1024;

export type HomeState = { kind: 'live'; cap: string; since: Date } | { kind: 'revoked'; since: Date };

export interface HomeRecordContent {
  name: string;
  state: HomeState;
}

export interface HomeKeys {
  index: Uint8Array;
  seal: Uint8Array;
  prefix: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function deriveHomeKeys(secret: Uint8Array): HomeKeys {
  if (secret.length < 32) throw new RangeError('the homes secret must be at least 32 bytes');
  const index = taggedHmac(secret, TAG.homeIndexKey);
  return {
    index,
    seal: taggedHmac(secret, TAG.homeSealKey),
    prefix: taggedHmac(index, TAG.homeSlotPrefix).subarray(0, HOME_PREFIX_BYTES),
  };
}

export function checkHomeName(name: string): Uint8Array {
  const bytes = encoder.encode(name);
  if (name.length === 0 || bytes.length > MAX_HOME_NAME_BYTES || hasControlCharacter(name)) {
    throw new InvalidInputError(`a home name is 1 to ${MAX_HOME_NAME_BYTES} bytes of UTF-8 without control characters`);
  }
  return bytes;
}

export function homeStorageIndex(keys: HomeKeys, name: string): Uint8Array {
  const si = new Uint8Array(STORAGE_INDEX_BYTES);
  si.set(keys.prefix, 0);
  si.set(taggedHmac(keys.index, TAG.homeSlot, checkHomeName(name)).subarray(0, STORAGE_INDEX_BYTES - HOME_PREFIX_BYTES), HOME_PREFIX_BYTES);
  return si;
}

/** True iff `si` has this system's home prefix: it names a home slot (or, with chance 2^-64, a directory). */
export function isHomeStorageIndex(keys: HomeKeys, si: Uint8Array): boolean {
  if (si.length !== STORAGE_INDEX_BYTES) return false;
  for (let i = 0; i < HOME_PREFIX_BYTES; i++) if (si[i] !== keys.prefix[i]) return false;
  return true;
}

function aad(si: Uint8Array, seq: bigint): Uint8Array {
  return Buffer.concat([netstring(encoder.encode(TAG.homeRecord)), netstring(si), netstring(u64be(seq))]);
}

export function sealHomeRecord(keys: HomeKeys, si: Uint8Array, seq: bigint, content: HomeRecordContent, nonce?: Uint8Array): Uint8Array {
  const name = checkHomeName(content.name);
  const cap = content.state.kind === 'live' ? encoder.encode(content.state.cap) : new Uint8Array(0);
  if (cap.length > MAX_CAP_BYTES) throw new InvalidInputError('root cap too long');
  const plain = Buffer.alloc(1 + 8 + 2 + name.length + 2 + cap.length);
  let at = plain.writeUInt8(content.state.kind === 'live' ? 1 : 2, 0);
  plain.set(u64be(content.state.since.getTime()), at);
  at += 8;
  at = plain.writeUInt16BE(name.length, at);
  plain.set(name, at);
  at += name.length;
  at = plain.writeUInt16BE(cap.length, at);
  plain.set(cap, at);
  const out = sealRandomized(keys.seal, nonce ?? randomBytes(XCHACHA_NONCE_BYTES), plain, aad(si, seq), 1);
  out[0] = HOME_RECORD_VERSION;
  return out;
}

/**
 * Opens a home record. Throws IntegrityError (naming the slot by its public
 * storage index, nothing else) for a record that is not a home record of this
 * system, was altered, or sits in another slot or under another seq.
 */
export function openHomeRecord(keys: HomeKeys, si: Uint8Array, seq: bigint, record: Uint8Array): HomeRecordContent {
  const bad = (): IntegrityError => new IntegrityError(Buffer.from(si).toString('hex'), 'home record');
  if (record.length < 1 + XCHACHA_NONCE_BYTES + XCHACHA_TAG_BYTES || record[0] !== HOME_RECORD_VERSION) throw bad();
  let plain: Buffer;
  try {
    plain = Buffer.from(openRandomized(keys.seal, record.subarray(1), aad(si, seq)));
  } catch (err) {
    if (err instanceof AeadError) throw bad();
    throw err;
  }
  try {
    const state = plain.readUInt8(0);
    const since = new Date(Number(plain.readBigUInt64BE(1)));
    const nameLength = plain.readUInt16BE(9);
    const name = decoder.decode(plain.subarray(11, 11 + nameLength));
    const capLength = plain.readUInt16BE(11 + nameLength);
    const end = 13 + nameLength + capLength;
    if (end !== plain.length || nameLength === 0) throw bad();
    const cap = plain.subarray(13 + nameLength, end).toString('latin1');
    if (state === 1 && capLength > 0) return { name, state: { kind: 'live', cap, since } };
    if (state === 2 && capLength === 0) return { name, state: { kind: 'revoked', since } };
    throw bad();
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    throw bad(); // a length field pointing past the end: only a forger holding K_seal could write that
  }
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
