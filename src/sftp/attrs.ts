import type { Cap } from '../cap/index.js';
import type { EntryMetadata } from '../tree/index.js';

/**
 * What stat and readdir report. capstan has no owners and no mode bits
 * beyond "writable or not" and a file's "executable or not", so:
 * - uid and gid are 0; the long listing shows the session's user name as
 *   owner and group (what a user expects to see for their own files);
 * - directories are 0755, files 0644, executable files 0755; without write
 *   permission (a noWrite entry, or anything seen through a read-only cap or
 *   session) the w bits are dropped (0555, 0444, 0555); an entry whose cap
 *   this version cannot read (unknown kinds, verify caps) is a file with
 *   mode 0000;
 * - a symbolic link is 0120777 (as Linux shows every link) with the
 *   target's length as its size, whatever the tree's write permission: what
 *   may be done to a link is decided by its directory;
 * - times are whole seconds (SFTP v3); an object without metadata (the
 *   root, a /uri cap) shows the current time.
 */

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export type NodeKind = 'directory' | 'file' | 'symlink' | 'unknown';

export interface SftpAttrs {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  atime: number;
  mtime: number;
}

export function kindOf(cap: Cap): NodeKind {
  switch (cap.kind) {
    case 'dir-write':
    case 'dir-read':
      return 'directory';
    case 'file-read':
    case 'literal':
      return 'file';
    case 'symlink':
      return 'symlink';
    default:
      return 'unknown';
  }
}

/** Size an entry should show: its metadata, or what the cap itself says. */
export function sizeOf(cap: Cap, metadata?: Partial<EntryMetadata>): number {
  if (cap.kind === 'symlink') return cap.target.length;
  if (metadata?.size !== undefined) return metadata.size;
  if (cap.kind === 'file-read' || cap.kind === 'literal') return cap.size;
  return 0;
}

/** The metadata an attribute set is made from; a missing time defaults as makeAttrs says. */
export type AttrSource = { [K in 'mtimeMs' | 'atimeMs' | 'executable']?: EntryMetadata[K] | undefined };

export function makeAttrs(kind: NodeKind, metadata: AttrSource | undefined, size: number, writable: boolean): SftpAttrs {
  const nowMs = Date.now();
  const mtimeMs = metadata?.mtimeMs ?? nowMs;
  const atimeMs = metadata?.atimeMs ?? mtimeMs;
  let mode: number;
  if (kind === 'directory') mode = S_IFDIR | (writable ? 0o755 : 0o555);
  else if (kind === 'file') mode = S_IFREG | (writable ? 0o644 : 0o444) | (metadata?.executable === true ? 0o111 : 0);
  else if (kind === 'symlink') mode = S_IFLNK | 0o777;
  else mode = S_IFREG;
  return {
    mode,
    uid: 0,
    gid: 0,
    size: kind === 'directory' ? 0 : size,
    atime: toSeconds(atimeMs),
    mtime: toSeconds(mtimeMs),
  };
}

function toSeconds(ms: number): number {
  // SFTP v3 times are uint32: clamp rather than wrap for dates outside 1970..2106.
  return Math.min(0xffffffff, Math.max(0, Math.floor(ms / 1000)));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS_S = (365 * 24 * 60 * 60) / 2;

function modeString(mode: number): string {
  const format = mode & 0o170000;
  const type = format === S_IFDIR ? 'd' : format === S_IFLNK ? 'l' : '-';
  let bits = '';
  for (let shift = 6; shift >= 0; shift -= 3) {
    const b = (mode >> shift) & 7;
    bits += (b & 4 ? 'r' : '-') + (b & 2 ? 'w' : '-') + (b & 1 ? 'x' : '-');
  }
  return type + bits;
}

/** `%b %e %H:%M` for the last six months, `%b %e  %Y` otherwise, in server local time (as OpenSSH's ls_file). */
function timeString(mtime: number, nowS: number): string {
  const d = new Date(mtime * 1000);
  const day = String(d.getDate()).padStart(2, ' ');
  const head = `${MONTHS[d.getMonth()]} ${day}`;
  if (nowS - SIX_MONTHS_S < mtime && nowS >= mtime) {
    return `${head} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  }
  return `${head}  ${d.getFullYear()}`;
}

/**
 * The `ls -l` line OpenSSH's sftp prints as is for `ls -l`, in the layout of
 * OpenSSH's own server (sftp-common.c ls_file):
 * `-rw-r--r--    1 alice    alice        1234 Nov 23 04:41 name`.
 */
export function longname(name: string, attrs: SftpAttrs, owner: string, linkTarget?: string): string {
  const who = owner.padEnd(8, ' ');
  const size = String(attrs.size).padStart(8, ' ');
  // OpenSSH's own ls_file never adds the target; `ls -l` elsewhere does, and sftp prints the line as is.
  const shown = linkTarget !== undefined ? `${name} -> ${linkTarget}` : name;
  return `${modeString(attrs.mode)}    1 ${who} ${who} ${size} ${timeString(attrs.mtime, Math.floor(Date.now() / 1000))} ${shown}`;
}

/** True when an SFTP permissions field grants no write bit: chmod a-w. */
export function modeDeniesWrite(mode: number): boolean {
  return (mode & 0o222) === 0;
}

/** True when an SFTP permissions field grants an execute bit: what a file's `executable` keeps. */
export function modeExecutes(mode: number): boolean {
  return (mode & 0o111) !== 0;
}
