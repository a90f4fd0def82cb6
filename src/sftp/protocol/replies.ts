import { EXTENSIONS, LIMITS, PACKET, SFTP_VERSION, type StatusCode } from './constants.js';
import { PacketBuilder, type WireAttrs } from './wire.js';

/**
 * Every packet the server sends, each built as one buffer. A reply is only
 * built here; when it is sent (in request order) is the session's business.
 */

/** VERSION 3 followed by our extension pairs. */
export function versionPacket(): Buffer {
  const b = new PacketBuilder(PACKET.VERSION).u32(SFTP_VERSION);
  for (const [name, version] of EXTENSIONS) b.string(name).string(version);
  return b.build();
}

export function statusPacket(id: number, code: StatusCode, message = ''): Buffer {
  return new PacketBuilder(PACKET.STATUS).u32(id).u32(code).string(message).string('').build();
}

export function handlePacket(id: number, handle: Uint8Array): Buffer {
  return new PacketBuilder(PACKET.HANDLE).u32(id).string(handle).build();
}

/** DATA: the one reply whose size follows the client's request; `data` is copied once, into the packet. */
export function dataPacket(id: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(DATA_HEADER_BYTES + data.length);
  out.set(data, DATA_HEADER_BYTES);
  return finishDataPacket(out, id, data.length);
}

/** uint32 length ‖ type ‖ uint32 id ‖ uint32 data length: what precedes a DATA packet's bytes. */
export const DATA_HEADER_BYTES = 13;

/**
 * DATA whose bytes the caller already put at DATA_HEADER_BYTES of `packet`
 * (read straight into it: no copy of its own); writes the header for
 * `length` of them and answers the packet cut to that length.
 */
export function finishDataPacket(packet: Buffer, id: number, length: number): Buffer {
  packet.writeUInt32BE(9 + length, 0);
  packet.writeUInt8(PACKET.DATA, 4);
  packet.writeUInt32BE(id >>> 0, 5);
  packet.writeUInt32BE(length, 9);
  return packet.subarray(0, DATA_HEADER_BYTES + length);
}

export interface NameEntry {
  /** Bytes for READLINK: a link target is returned exactly as it was stored. */
  filename: string | Uint8Array;
  longname: string | Uint8Array;
  attrs: WireAttrs;
}

export function namePacket(id: number, entries: readonly NameEntry[]): Buffer {
  const b = new PacketBuilder(PACKET.NAME).u32(id).u32(entries.length);
  for (const e of entries) b.string(e.filename).string(e.longname).attrs(e.attrs);
  return b.build();
}

/** A NAME reply of one path as both names, no attributes: how OpenSSH's server answers REALPATH, READLINK and expand-path. */
export function pathPacket(id: number, path: string | Uint8Array): Buffer {
  return namePacket(id, [{ filename: path, longname: path, attrs: {} }]);
}

export function attrsPacket(id: number, attrs: WireAttrs): Buffer {
  return new PacketBuilder(PACKET.ATTRS).u32(id).attrs(attrs).build();
}

/** EXTENDED_REPLY: the request id, then the extension's own fields, built by the caller. */
export function extendedReply(id: number, fill: (b: PacketBuilder) => void): Buffer {
  const b = new PacketBuilder(PACKET.EXTENDED_REPLY).u32(id);
  fill(b);
  return b.build();
}

export function limitsReply(id: number, maxOpenHandles: number = LIMITS.maxOpenHandles): Buffer {
  return extendedReply(id, (b) => b.u64(LIMITS.maxPacketLength).u64(LIMITS.maxReadLength).u64(LIMITS.maxWriteLength).u64(maxOpenHandles));
}

export interface StatVfs {
  bsize: number;
  frsize: number;
  blocks: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
  favail: bigint;
  fsid: bigint;
  flag: number;
  namemax: number;
}

export const STATVFS_FLAG_RDONLY = 0x1;
export const STATVFS_FLAG_NOSUID = 0x2;

export function statvfsReply(id: number, s: StatVfs): Buffer {
  return extendedReply(id, (b) =>
    b
      .u64(s.bsize)
      .u64(s.frsize)
      .u64(s.blocks)
      .u64(s.bfree)
      .u64(s.bavail)
      .u64(s.files)
      .u64(s.ffree)
      .u64(s.favail)
      .u64(s.fsid)
      .u64(s.flag)
      .u64(s.namemax),
  );
}
