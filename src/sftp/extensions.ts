import { PermissionError } from '../errors.js';
import { checkFileRequest } from './check-file.js';
import { copyDataRequest } from './copy-data.js';
import type { QuotaSpace } from './quota-hooks.js';
import type { SessionContext } from './session-context.js';
import { STATUS } from './protocol/constants.js';
import {
  limitsReply,
  pathPacket,
  STATVFS_FLAG_NOSUID,
  STATVFS_FLAG_RDONLY,
  type StatVfs,
  statusPacket,
  statvfsReply,
} from './protocol/replies.js';
import { MalformedPacketError, WireReader } from './protocol/wire.js';
import { SftpStatusError } from './status.js';
import { realpath } from './symlink-ops.js';
import { hardlink, rename } from './tree-ops.js';
import type { UserTree } from './user-tree.js';

/**
 * The OpenSSH extended requests capstan implements (advertised in VERSION,
 * see protocol/constants.ts EXTENSIONS). Anything else is OP_UNSUPPORTED; a
 * payload that does not parse is BAD_MESSAGE.
 */

/** Extensions that change something (refused in a read-only session, run alone); the rest only read. */
const WRITING_EXTENSIONS: ReadonlySet<string> = new Set([
  'posix-rename@openssh.com',
  'hardlink@openssh.com',
  'fsync@openssh.com',
  'copy-data',
]);

export function extensionWrites(name: string): boolean {
  return WRITING_EXTENSIONS.has(name);
}

const BLOCK = 4096;
/** What a tree without a byte quota reports as its size: 1 PiB. */
const UNLIMITED_BYTES = 1n << 50n;
/** And its number of inodes without a file quota. */
const UNLIMITED_FILES = 1n << 32n;

/**
 * What statvfs@openssh.com and fstatvfs@openssh.com report. A capstan tree
 * has no device behind it, and the chunk store may be remote and shared, so
 * the local disk says nothing about the room a user has; reporting it would
 * be wrong and change under them.
 *
 * - Without a quota: 4 KiB blocks, 1 PiB, all of it free; 2^32 inodes, all
 *   free. Clients only need "plenty of room" (`df`, sshfs's statfs, rsync's
 *   checks), and nothing is counted for such an account.
 * - Under a quota (`space`, the account's quota and counted usage): what
 *   `df` on the user's side should show, the quota as the size (blocks
 *   rounded up) and what is left of it as free (rounded down, never below
 *   zero), for bytes and for files; the limit not set stays as above, less
 *   what is used. So `df -h` in an sshfs mount, `sftp`'s `df` and `rclone
 *   about` tell the user how much room the quota leaves, before an upload
 *   fails with "quota exceeded".
 *
 * The read-only flag follows the session (a read-cap root or a read-only
 * gateway), and nosuid is always set: nothing here runs; names up to 255
 * bytes.
 */
export function statvfsFor(view: UserTree, space?: QuotaSpace): StatVfs {
  const usedBytes = BigInt(space?.usage.bytes ?? 0);
  const usedFiles = BigInt(space?.usage.files ?? 0);
  const sizeBytes = space?.quota.bytes === undefined ? UNLIMITED_BYTES : BigInt(space.quota.bytes);
  const files = space?.quota.files === undefined ? UNLIMITED_FILES : BigInt(space.quota.files);
  const block = BigInt(BLOCK);
  const blocks = (sizeBytes + block - 1n) / block;
  const bfree = sizeBytes > usedBytes ? (sizeBytes - usedBytes) / block : 0n;
  const ffree = files > usedFiles ? files - usedFiles : 0n;
  return {
    bsize: BLOCK,
    frsize: BLOCK,
    blocks,
    bfree,
    bavail: bfree,
    files,
    ffree,
    favail: ffree,
    fsid: 0x63617073n, // "caps"
    flag: STATVFS_FLAG_NOSUID | (view.writable ? 0 : STATVFS_FLAG_RDONLY),
    namemax: 255,
  };
}

/** A session's home: its root (paths.ts). */
const HOME = '/';

/**
 * `~` expanded as OpenSSH's server does for expand-path@openssh.com: `~`
 * and `~/rest` are the home and a path below it, `~user` is the home of
 * that user, which a session knows only for its own user (any other name is
 * "no such user", whether or not an account has it). Other paths are
 * unchanged, relative ones taken from the home as everywhere.
 */
export function expandHome(path: string, user: string): string {
  if (!path.startsWith('~')) return path;
  const slash = path.indexOf('/');
  const name = slash === -1 ? path.slice(1) : path.slice(1, slash);
  if (name !== '' && name !== user) throw new SftpStatusError(STATUS.NO_SUCH_FILE, 'no such user');
  return HOME + (slash === -1 ? '' : path.slice(slash + 1));
}

/** Reads an extended request's own fields: each a string, exactly those, nothing after. */
export function extensionFields<K extends readonly ('text' | 'bytes')[]>(
  data: Buffer,
  kinds: K,
): { [I in keyof K]: K[I] extends 'text' ? string : Buffer } {
  try {
    const r = new WireReader(data);
    const out = kinds.map((kind) => {
      if (kind === 'bytes') return r.bytes();
      const text = r.text();
      // A path that is not UTF-8 names nothing, as in the core requests.
      if (text === null) throw new SftpStatusError(STATUS.NO_SUCH_FILE, 'no such file');
      return text;
    });
    r.end();
    return out as { [I in keyof K]: K[I] extends 'text' ? string : Buffer };
  } catch (err) {
    if (err instanceof MalformedPacketError) throw new SftpStatusError(STATUS.BAD_MESSAGE, 'malformed extended request');
    throw err;
  }
}

export async function extendedRequest(ctx: SessionContext, id: number, name: string, data: Buffer): Promise<Buffer> {
  const { view } = ctx;
  switch (name) {
    case 'posix-rename@openssh.com': {
      const [from, to] = extensionFields(data, ['text', 'text'] as const);
      await rename(view, from, to, true, ctx.quota);
      return statusPacket(id, STATUS.OK);
    }
    case 'hardlink@openssh.com': {
      const [from, to] = extensionFields(data, ['text', 'text'] as const);
      await hardlink(view, from, to, ctx.quota);
      return statusPacket(id, STATUS.OK);
    }
    case 'statvfs@openssh.com': {
      const [path] = extensionFields(data, ['text'] as const);
      await view.stat(path, true); // statvfs(2) of a missing path is ENOENT
      return statvfsReply(id, statvfsFor(view, await ctx.quota?.space()));
    }
    case 'fstatvfs@openssh.com': {
      const [wire] = extensionFields(data, ['bytes'] as const);
      ctx.handles.get(wire);
      return statvfsReply(id, statvfsFor(view, await ctx.quota?.space()));
    }
    case 'fsync@openssh.com': {
      const [wire] = extensionFields(data, ['bytes'] as const);
      const handle = ctx.handles.get(wire);
      if (handle.kind === 'write') await ctx.commit(handle, false);
      else if (handle.kind === 'dir') throw new PermissionError('not a file');
      return statusPacket(id, STATUS.OK);
    }
    case 'expand-path@openssh.com': {
      const [path] = extensionFields(data, ['text'] as const);
      return pathPacket(id, await realpath(view, expandHome(path, view.user)));
    }
    case 'home-directory': {
      const [user] = extensionFields(data, ['text'] as const);
      if (user !== view.user) throw new SftpStatusError(STATUS.NO_SUCH_FILE, 'no such user');
      return pathPacket(id, HOME);
    }
    case 'limits@openssh.com':
      extensionFields(data, [] as const);
      return limitsReply(id, ctx.handles.max);
    case 'copy-data':
      return copyDataRequest(ctx, id, data);
    case 'check-file-name':
    case 'check-file-handle':
      return checkFileRequest(ctx, id, name, data);
    // The name of an earlier draft, with a handle: paramiko's SFTPFile.check sends it.
    case 'check-file':
      return checkFileRequest(ctx, id, 'check-file-handle', data);
    default:
      return statusPacket(id, STATUS.OP_UNSUPPORTED, 'extension not supported');
  }
}
