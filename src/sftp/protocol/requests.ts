import { PACKET } from './constants.js';
import type { SymlinkOrder } from './symlink-order.js';
import { MalformedPacketError, WireReader, type WireAttrs } from './wire.js';

/**
 * What a client may ask, decoded from one packet's payload (the bytes after
 * the type byte). Paths are `string | null`: null when the bytes were not
 * valid UTF-8 (such a name can exist nowhere in capstan, so it names
 * nothing: the handlers answer NO_SUCH_FILE). Handles and WRITE data are
 * views into the packet, not copies.
 */
export type Path = string | null;

export type Request =
  | { type: 'open'; id: number; path: Path; pflags: number; attrs: WireAttrs }
  | { type: 'close' | 'fstat' | 'readdir'; id: number; handle: Buffer }
  | { type: 'read'; id: number; handle: Buffer; offset: number; length: number }
  | { type: 'write'; id: number; handle: Buffer; offset: number; data: Buffer }
  | { type: 'lstat' | 'stat' | 'opendir' | 'remove' | 'rmdir' | 'realpath' | 'readlink'; id: number; path: Path }
  | { type: 'setstat' | 'mkdir'; id: number; path: Path; attrs: WireAttrs }
  | { type: 'fsetstat'; id: number; handle: Buffer; attrs: WireAttrs }
  | { type: 'rename'; id: number; from: Path; to: Path }
  /** SYMLINK's two strings, in the order the client sends them (symlink-order.ts). */
  | { type: 'symlink'; id: number; target: Buffer; link: Path }
  | { type: 'extended'; id: number; name: string; data: Buffer }
  | { type: 'unknown'; id: number; packetType: number };

export type RequestType = Request['type'];

/** The request of one type (a member whose `type` is a union is narrowed to that one type). */
export type RequestOf<K extends RequestType> = Request & { type: K };

const PATH_ONLY = new Map<number, 'lstat' | 'stat' | 'opendir' | 'remove' | 'rmdir' | 'realpath' | 'readlink'>([
  [PACKET.LSTAT, 'lstat'],
  [PACKET.STAT, 'stat'],
  [PACKET.OPENDIR, 'opendir'],
  [PACKET.REMOVE, 'remove'],
  [PACKET.RMDIR, 'rmdir'],
  [PACKET.REALPATH, 'realpath'],
  [PACKET.READLINK, 'readlink'],
]);

const HANDLE_ONLY = new Map<number, 'close' | 'fstat' | 'readdir'>([
  [PACKET.CLOSE, 'close'],
  [PACKET.FSTAT, 'fstat'],
  [PACKET.READDIR, 'readdir'],
]);

/** A request whose id was read but whose fields were not: answered BAD_MESSAGE, the session goes on. */
export class MalformedRequestError extends MalformedPacketError {
  constructor(
    readonly id: number,
    cause: MalformedPacketError,
  ) {
    super(cause.message.replace(/^malformed SFTP packet: /, ''));
    this.name = 'MalformedRequestError';
  }
}

/**
 * Decodes one request packet (`type` and the payload after it). Throws
 * MalformedRequestError when the id parsed and the rest did not (the caller
 * answers BAD_MESSAGE), MalformedPacketError when not even the id did (the
 * caller ends the session: there is nobody to answer). `symlinkOrder`: the
 * order the client sends SYMLINK's strings in (symlink-order.ts).
 */
export function decodeRequest(type: number, payload: Buffer, symlinkOrder: SymlinkOrder = 'target-first'): Request {
  const r = new WireReader(payload);
  const id = r.u32();
  try {
    const request = decodeFields(type, id, r, symlinkOrder);
    // WRITE takes its declared data and ignores what follows, as OpenSSH's sftp-server does (it
    // skips a packet's unread bytes): the Go sftp client of rclone 1.60 and restic 0.14 sends the
    // last, short block of a file with the whole buffer behind it. Every other request stays strict.
    if (type === PACKET.WRITE) r.rest();
    r.end();
    return request;
  } catch (err) {
    if (err instanceof MalformedPacketError) throw new MalformedRequestError(id, err);
    throw err;
  }
}

function decodeFields(type: number, id: number, r: WireReader, symlinkOrder: SymlinkOrder): Request {
  const pathOnly = PATH_ONLY.get(type);
  if (pathOnly !== undefined) return { type: pathOnly, id, path: r.text() };
  const handleOnly = HANDLE_ONLY.get(type);
  if (handleOnly !== undefined) return { type: handleOnly, id, handle: r.bytes() };
  switch (type) {
    case PACKET.OPEN:
      return { type: 'open', id, path: r.text(), pflags: r.u32(), attrs: r.attrs() };
    case PACKET.READ:
      return { type: 'read', id, handle: r.bytes(), offset: r.u64(), length: r.u32() };
    case PACKET.WRITE:
      return { type: 'write', id, handle: r.bytes(), offset: r.u64(), data: r.bytes() };
    case PACKET.SETSTAT:
      return { type: 'setstat', id, path: r.text(), attrs: r.attrs() };
    case PACKET.MKDIR:
      return { type: 'mkdir', id, path: r.text(), attrs: r.attrs() };
    case PACKET.FSETSTAT:
      return { type: 'fsetstat', id, handle: r.bytes(), attrs: r.attrs() };
    case PACKET.RENAME:
      return { type: 'rename', id, from: r.text(), to: r.text() };
    case PACKET.SYMLINK: {
      if (symlinkOrder === 'target-first') return { type: 'symlink', id, target: r.bytes(), link: r.text() };
      const link = r.text();
      return { type: 'symlink', id, target: r.bytes(), link };
    }
    case PACKET.EXTENDED: {
      const name = r.text();
      // An extension name that is not UTF-8 names no extension we know.
      return { type: 'extended', id, name: name ?? '', data: r.rest() };
    }
    default:
      r.rest();
      return { type: 'unknown', id, packetType: type };
  }
}
