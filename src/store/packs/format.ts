import { crc32 } from 'node:zlib';
import { CID } from 'multiformats/cid';
import { isChunkAddress } from '../address.js';
import type { ChunkAddress } from '../chunks/chunk-store.js';
import { STORAGE_INDEX_BYTES } from '../slots/slot-limits.js';

/**
 * Pack file format version 3: the authoritative code for docs/spec/packs.md.
 *
 *     pack    = header ‖ record* ‖ [trailer record ‖ footer]
 *     header  = "CSPK" ‖ u8 3 ‖ 3 × 0 ‖ u64 pack id
 *     record  = u32 n ‖ u8 type ‖ body (n bytes) ‖ u32 crc32(type ‖ body)
 *     object  = 0x01: u8 a ‖ address (a = 36) ‖ bytes
 *     slot    = 0x02: storage index (32) ‖ u64 seq ‖ slot record
 *     trailer = 0x03: u32 count ‖ count × (u8 a ‖ address ‖ u64 offset ‖ u32 length)
 *     footer  = u64 trailer offset ‖ "CSPT"
 *
 * Integers are big-endian. Offsets in the trailer (and in the object index)
 * point at an object's bytes, not at its record.
 */
export const PACK_FORMAT_VERSION = 3;
export const PACK_MAGIC = Buffer.from('CSPK', 'latin1');
export const FOOTER_MAGIC = Buffer.from('CSPT', 'latin1');
export const HEADER_BYTES = 16;
export const FOOTER_BYTES = 12;
export const PACK_ID_BYTES = 8;
/** Bytes a record adds around its body: length (4), type (1), crc (4). */
export const RECORD_OVERHEAD = 9;
const ADDRESS_BYTES = 36;

export const RECORD = { object: 0x01, slot: 0x02, trailer: 0x03 } as const;

/** A pack that does not parse where it must (header, trailer, footer): the caller turns it into an IntegrityError. */
export class PackFormatError extends Error {
  constructor(what: string) {
    super(`pack format: ${what}`);
    this.name = 'PackFormatError';
  }
}

/** Where an object's bytes are. */
export interface Location {
  pack: string;
  offset: number;
  length: number;
}

export function packIdHex(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}

export function encodeHeader(packId: Uint8Array): Buffer {
  if (packId.length !== PACK_ID_BYTES) throw new RangeError('a pack id is 8 bytes');
  const out = Buffer.alloc(HEADER_BYTES);
  PACK_MAGIC.copy(out, 0);
  out.writeUInt8(PACK_FORMAT_VERSION, 4);
  out.set(packId, 8);
  return out;
}

/** The pack id of a header, or PackFormatError. */
export function decodeHeader(header: Uint8Array): string {
  const b = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  if (b.length < HEADER_BYTES || !b.subarray(0, 4).equals(PACK_MAGIC)) throw new PackFormatError('not a pack (bad magic)');
  if (b.readUInt8(4) !== PACK_FORMAT_VERSION) throw new PackFormatError(`pack version ${b.readUInt8(4)} is not ${PACK_FORMAT_VERSION}`);
  if (b.readUIntBE(5, 3) !== 0) throw new PackFormatError('reserved header bytes are not zero');
  return packIdHex(b.subarray(8, 16));
}

/**
 * One record, as the buffers to write: head (length, type and the body's
 * own fields), the payload (object bytes or slot record, not copied), the
 * crc. `payloadOffset` is where the payload starts within the record.
 */
export interface EncodedRecord {
  parts: Buffer[];
  bytes: number;
  payloadOffset: number;
}

function record(type: number, fields: Buffer, payload: Uint8Array): EncodedRecord {
  const body = fields.length + payload.length;
  const head = Buffer.allocUnsafe(5 + fields.length);
  head.writeUInt32BE(body, 0);
  head.writeUInt8(type, 4);
  fields.copy(head, 5);
  let crc = crc32(head.subarray(4));
  crc = crc32(payload, crc);
  const tail = Buffer.allocUnsafe(4);
  tail.writeUInt32BE(crc >>> 0, 0);
  const p = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return { parts: [head, p, tail], bytes: head.length + p.length + 4, payloadOffset: head.length };
}

export function objectRecord(address: ChunkAddress, bytes: Uint8Array): EncodedRecord {
  const cid = address.bytes;
  if (cid.length !== ADDRESS_BYTES) throw new RangeError('a pack holds 36-byte addresses');
  const fields = Buffer.allocUnsafe(1 + cid.length);
  fields.writeUInt8(cid.length, 0);
  fields.set(cid, 1);
  return record(RECORD.object, fields, bytes);
}

export function slotRecord(storageIndex: Uint8Array, seq: bigint, slot: Uint8Array): EncodedRecord {
  if (storageIndex.length !== STORAGE_INDEX_BYTES) throw new RangeError('a storage index is 32 bytes');
  const fields = Buffer.allocUnsafe(STORAGE_INDEX_BYTES + 8);
  fields.set(storageIndex, 0);
  fields.writeBigUInt64BE(seq, STORAGE_INDEX_BYTES);
  return record(RECORD.slot, fields, slot);
}

export interface TrailerEntry {
  address: ChunkAddress;
  offset: number;
  length: number;
}

/** Bytes of one trailer entry: u8 a ‖ address ‖ u64 offset ‖ u32 length. */
const TRAILER_ENTRY_BYTES = 1 + ADDRESS_BYTES + 12;
/** Where a trailer record's entries start: u32 n ‖ u8 type ‖ u32 count. */
const TRAILER_ENTRIES_AT = 9;

/**
 * The trailer of a pack being written, kept encoded as its objects are
 * appended: 49 bytes an entry. A TrailerEntry array held each address as a
 * CID (the CID, its digest, their byte views), some 600 bytes of heap an
 * object, and a journal's active pack may list 200,000 of them.
 */
export class TrailerBuilder {
  #buf: Buffer;
  #count = 0;

  constructor(expected = 256) {
    this.#buf = Buffer.allocUnsafe(TRAILER_ENTRIES_AT + Math.max(expected, 1) * TRAILER_ENTRY_BYTES);
  }

  get count(): number {
    return this.#count;
  }

  add(address: ChunkAddress, offset: number, length: number): void {
    const cid = address.bytes;
    if (cid.length !== ADDRESS_BYTES) throw new RangeError('a pack holds 36-byte addresses');
    let p = TRAILER_ENTRIES_AT + this.#count * TRAILER_ENTRY_BYTES;
    if (p + TRAILER_ENTRY_BYTES > this.#buf.length) {
      const grown = Buffer.allocUnsafe(TRAILER_ENTRIES_AT + this.#count * 2 * TRAILER_ENTRY_BYTES);
      this.#buf.copy(grown, 0, 0, p);
      this.#buf = grown;
    }
    const b = this.#buf;
    b.writeUInt8(ADDRESS_BYTES, p);
    b.set(cid, p + 1);
    p += 1 + ADDRESS_BYTES;
    b.writeUInt32BE(Math.floor(offset / 2 ** 32), p);
    b.writeUInt32BE(offset >>> 0, p + 4);
    b.writeUInt32BE(length, p + 8);
    this.#count++;
  }

  /** The trailer record and the footer, for a pack whose trailer record starts at `at`. */
  finish(at: number): Buffer[] {
    const end = TRAILER_ENTRIES_AT + this.#count * TRAILER_ENTRY_BYTES;
    const head = this.#buf.subarray(0, end);
    head.writeUInt32BE(end - 5, 0);
    head.writeUInt8(RECORD.trailer, 4);
    head.writeUInt32BE(this.#count, 5);
    const crc = Buffer.allocUnsafe(4);
    crc.writeUInt32BE(crc32(head.subarray(4)) >>> 0, 0);
    const footer = Buffer.allocUnsafe(FOOTER_BYTES);
    footer.writeBigUInt64BE(BigInt(at), 0);
    FOOTER_MAGIC.copy(footer, 8);
    return [head, crc, footer];
  }
}

/** The trailer record and the footer, for a pack whose trailer record starts at `at`. */
export function trailerAndFooter(entries: readonly TrailerEntry[], at: number): Buffer[] {
  const trailer = new TrailerBuilder(entries.length);
  for (const e of entries) trailer.add(e.address, e.offset, e.length);
  return trailer.finish(at);
}

/** The trailer's offset from a pack's last FOOTER_BYTES, or PackFormatError. */
export function decodeFooter(footer: Uint8Array, packLength: number): number {
  const b = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  if (b.length !== FOOTER_BYTES || !b.subarray(8).equals(FOOTER_MAGIC)) throw new PackFormatError('no footer');
  const at = Number(b.readBigUInt64BE(0));
  if (at < HEADER_BYTES || at > packLength - FOOTER_BYTES - RECORD_OVERHEAD - 4)
    throw new PackFormatError('footer points outside the pack');
  return at;
}

/** What a scan finds, record by record. */
export type ScannedRecord =
  | { type: 'object'; address: ChunkAddress; offset: number; length: number; end: number }
  | { type: 'slot'; storageIndex: Uint8Array; seq: bigint; record: Uint8Array; end: number }
  | { type: 'trailer'; entries: TrailerEntry[]; end: number };

/**
 * Parses the record starting at `at` in `buf` (a pack or a window of one,
 * `base` being the pack offset of buf[0]). Returns undefined when the record
 * is incomplete in `buf` or its crc fails: during recovery that is the torn
 * end of what was written. Object bytes are not copied (only located);
 * slot records are.
 */
export function scanRecord(buf: Uint8Array, at: number, base = 0): ScannedRecord | undefined {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length - at < RECORD_OVERHEAD) return undefined;
  const n = b.readUInt32BE(at);
  if (b.length - at < RECORD_OVERHEAD + n) return undefined;
  const type = b.readUInt8(at + 4);
  const body = b.subarray(at + 5, at + 5 + n);
  const crc = b.readUInt32BE(at + 5 + n);
  if (crc32(b.subarray(at + 4, at + 5 + n)) >>> 0 !== crc) return undefined;
  const end = base + at + RECORD_OVERHEAD + n;
  switch (type) {
    case RECORD.object: {
      const a = body.readUInt8(0);
      const address = decodeAddress(body.subarray(1, 1 + a));
      return { type: 'object', address, offset: base + at + 5 + 1 + a, length: n - 1 - a, end };
    }
    case RECORD.slot: {
      if (n < STORAGE_INDEX_BYTES + 8) throw new PackFormatError('short slot record');
      return {
        type: 'slot',
        storageIndex: new Uint8Array(body.subarray(0, STORAGE_INDEX_BYTES)),
        seq: body.readBigUInt64BE(STORAGE_INDEX_BYTES),
        record: new Uint8Array(body.subarray(STORAGE_INDEX_BYTES + 8)),
        end,
      };
    }
    case RECORD.trailer:
      return { type: 'trailer', entries: decodeTrailerBody(body), end };
    default:
      throw new PackFormatError(`unknown record type ${type}`);
  }
}

/** The entries of a trailer record read on its own (S3: the ranged GET between the trailer offset and the footer). */
export function decodeTrailerRecord(buf: Uint8Array): TrailerEntry[] {
  const scanned = scanRecord(buf, 0);
  if (scanned === undefined || scanned.type !== 'trailer') throw new PackFormatError('bad trailer');
  return scanned.entries;
}

function decodeTrailerBody(body: Buffer): TrailerEntry[] {
  if (body.length < 4) throw new PackFormatError('short trailer');
  const count = body.readUInt32BE(0);
  const each = 1 + ADDRESS_BYTES + 12;
  if (body.length !== 4 + count * each) throw new PackFormatError('trailer length does not match its count');
  const entries: TrailerEntry[] = [];
  for (let p = 4; p < body.length; p += each) {
    if (body.readUInt8(p) !== ADDRESS_BYTES) throw new PackFormatError('trailer address length');
    entries.push({
      address: decodeAddress(body.subarray(p + 1, p + 1 + ADDRESS_BYTES)),
      offset: Number(body.readBigUInt64BE(p + 1 + ADDRESS_BYTES)),
      length: body.readUInt32BE(p + 1 + ADDRESS_BYTES + 8),
    });
  }
  return entries;
}

function decodeAddress(bytes: Uint8Array): ChunkAddress {
  let cid: CID;
  try {
    cid = CID.decode(new Uint8Array(bytes));
  } catch {
    throw new PackFormatError('a record holds something that is not an address');
  }
  if (!isChunkAddress(cid)) throw new PackFormatError('a record holds an address of the wrong kind');
  return cid;
}
