import type { SFTPWrapper } from 'ssh2';

/**
 * SFTP v3 wire details that ssh2 does not give us (draft-ietf-secsh-filexfer-02
 * and OpenSSH's PROTOCOL file): the VERSION packet with the extensions we
 * implement, EXTENDED_REPLY packets, and the payloads of extended requests.
 * Sending goes through the two methods scripts/patch-ssh2.mjs adds to ssh2's
 * SFTP class; assertSsh2Patched() refuses to start a server without them.
 */

export const STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;
export type StatusCode = (typeof STATUS)[keyof typeof STATUS];

export const OPEN_FLAGS = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

const PACKET_VERSION = 2;
const PACKET_EXTENDED_REPLY = 201;

/**
 * What limits@openssh.com announces. OpenSSH's sftp (sftp-client.c) then uses
 * min(max-read/write-length, 256 KiB - 1024) per request, the same as against
 * OpenSSH's own server; ssh2 accepts incoming packets up to 256 KiB, and a
 * WRITE of 261120 bytes plus its header (~29 bytes) fits well under that.
 */
export const LIMITS = {
  maxPacketLength: 256 * 1024,
  maxReadLength: 256 * 1024 - 1024,
  maxWriteLength: 256 * 1024 - 1024,
  maxOpenHandles: 256,
} as const;

/** The extensions we advertise, with the version strings OpenSSH's client and ssh2's client check for. */
export const EXTENSIONS: ReadonlyArray<readonly [string, string]> = [
  ['posix-rename@openssh.com', '1'],
  ['statvfs@openssh.com', '2'],
  ['fstatvfs@openssh.com', '2'],
  ['hardlink@openssh.com', '1'],
  ['fsync@openssh.com', '1'],
  ['limits@openssh.com', '1'],
  // draft-ietf-secsh-filexfer-extensions-00 section 3: whole-file sha256, md5, sha1 from the manifest (check-file.ts).
  ['check-file-name', '1'],
  ['check-file-handle', '1'],
];

function sshString(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

function packet(type: number, body: Buffer[]): Buffer {
  const payload = Buffer.concat([Buffer.from([type]), ...body]);
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  payload.copy(out, 4);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function u64(n: number | bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n), 0);
  return b;
}

/** VERSION 3 followed by our extension pairs. */
export const VERSION_PACKET: Buffer = packet(PACKET_VERSION, [
  u32(3),
  ...EXTENSIONS.flatMap(([name, version]) => [sshString(name), sshString(version)]),
]);

export function extendedReply(reqid: number, body: Buffer[]): Buffer {
  return packet(PACKET_EXTENDED_REPLY, [u32(reqid), ...body]);
}

export function limitsReply(reqid: number, maxOpenHandles: number = LIMITS.maxOpenHandles): Buffer {
  return extendedReply(reqid, [u64(LIMITS.maxPacketLength), u64(LIMITS.maxReadLength), u64(LIMITS.maxWriteLength), u64(maxOpenHandles)]);
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

export function statvfsReply(reqid: number, s: StatVfs): Buffer {
  return extendedReply(reqid, [
    u64(s.bsize),
    u64(s.frsize),
    u64(s.blocks),
    u64(s.bfree),
    u64(s.bavail),
    u64(s.files),
    u64(s.ffree),
    u64(s.favail),
    u64(s.fsid),
    u64(s.flag),
    u64(s.namemax),
  ]);
}

/**
 * Reads the string fields of an extended request's payload (what follows the
 * extension name). Returns undefined if the payload is short or carries
 * trailing bytes: the caller answers BAD_MESSAGE. `utf8` fields are decoded
 * the way ssh2 decodes paths (invalid bytes become U+FFFD).
 */
export function readStrings(data: Buffer | undefined, kinds: readonly ('utf8' | 'raw')[]): (string | Buffer)[] | undefined {
  const buf = data ?? Buffer.alloc(0);
  const out: (string | Buffer)[] = [];
  let p = 0;
  for (const kind of kinds) {
    if (buf.length - p < 4) return undefined;
    const len = buf.readUInt32BE(p);
    p += 4;
    if (buf.length - p < len) return undefined;
    const field = buf.subarray(p, p + len);
    p += len;
    out.push(kind === 'utf8' ? field.toString('utf8') : Buffer.from(field));
  }
  return p === buf.length ? out : undefined;
}

/** ssh2's SFTP server object with the methods scripts/patch-ssh2.mjs adds. */
export interface PatchedSftp extends SFTPWrapper {
  _capstanVersion?: Buffer;
  _capstanSendRaw(packet: Buffer): boolean;
  _capstanBacklog(): number;
  _capstanExit(code: number): void;
}

let patchChecked = false;

/** Throws unless ssh2 carries our patch; run once before serving. */
export async function assertSsh2Patched(): Promise<void> {
  if (patchChecked) return;
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const { SFTP } = require('ssh2/lib/protocol/SFTP.js') as { SFTP: { prototype: Record<string, unknown> } };
  const methods = ['_capstanSendRaw', '_capstanBacklog', '_capstanExit'];
  if (methods.some((m) => typeof SFTP.prototype[m] !== 'function')) {
    throw new Error('ssh2 is not patched: run `node scripts/patch-ssh2.mjs` (the package postinstall)');
  }
  patchChecked = true;
}
