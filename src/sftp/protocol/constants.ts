/**
 * SFTP version 3 as OpenSSH speaks it: draft-ietf-secsh-filexfer-02 plus the
 * extensions in OpenSSH's PROTOCOL file. Numbers only; the byte layouts are in
 * wire.ts (fields), requests.ts (what a client sends) and replies.ts (what we
 * answer).
 */

/** Packet types (the byte after the length). */
export const PACKET = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

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

/** Which fields an ATTRS structure carries. */
export const ATTR_FLAGS = { SIZE: 0x1, UIDGID: 0x2, PERMISSIONS: 0x4, ACMODTIME: 0x8, EXTENDED: 0x80000000 } as const;

/** The only protocol version served; OpenSSH's client and server speak 3. */
export const SFTP_VERSION = 3;

/**
 * What limits@openssh.com announces. OpenSSH's sftp (sftp-client.c) then uses
 * min(max-read/write-length, 256 KiB - 1024) per request, the same as against
 * OpenSSH's own server, whose SFTP_MAX_MSG_LENGTH (256 KiB) is also the
 * largest packet we accept.
 */
export const LIMITS = {
  maxPacketLength: 256 * 1024,
  maxReadLength: 256 * 1024 - 1024,
  maxWriteLength: 256 * 1024 - 1024,
  maxOpenHandles: 256,
} as const;

/** The extensions we advertise in VERSION, with the version strings OpenSSH's client checks for. */
export const EXTENSIONS: ReadonlyArray<readonly [string, string]> = [
  ['posix-rename@openssh.com', '1'],
  ['statvfs@openssh.com', '2'],
  ['fstatvfs@openssh.com', '2'],
  ['hardlink@openssh.com', '1'],
  ['fsync@openssh.com', '1'],
  ['limits@openssh.com', '1'],
  // OpenSSH's `~` expansion (scp's `host:~user/file` needs it) and a user's home (extensions.ts expandHome).
  ['expand-path@openssh.com', '1'],
  ['home-directory', '1'],
  // OpenSSH PROTOCOL 4.10 (no @openssh.com: the draft's name), which `sftp cp` uses (copy-data.ts).
  ['copy-data', '1'],
  // draft-ietf-secsh-filexfer-extensions-00 section 3: whole-file sha256, md5, sha1 from the manifest (check-file.ts).
  ['check-file-name', '1'],
  ['check-file-handle', '1'],
];
