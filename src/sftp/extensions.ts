import { PermissionError } from '../errors.js';
import { checkFileRequest } from './check-file.js';
import { copyDataRequest } from './copy-data.js';
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

/**
 * What statvfs@openssh.com and fstatvfs@openssh.com report. A capstan tree
 * has no device behind it and no meaningful free space (the chunk store may
 * be remote and shared), so the values are fixed and stable: 4 KiB blocks,
 * 1 PiB total, all of it free; 2^32 inodes, all free; names up to 255 bytes.
 * Clients only need "plenty of room" (`df`, sshfs's statfs, rsync's checks);
 * reporting the local spool disk would be wrong and change under them. The
 * read-only flag follows the session (a read-cap root or a read-only
 * gateway), and nosuid is always set: nothing here runs.
 */
export function statvfsFor(view: UserTree): StatVfs {
  const blocks = (1n << 50n) / BigInt(BLOCK);
  const inodes = 1n << 32n;
  return {
    bsize: BLOCK,
    frsize: BLOCK,
    blocks,
    bfree: blocks,
    bavail: blocks,
    files: inodes,
    ffree: inodes,
    favail: inodes,
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
      return statvfsReply(id, statvfsFor(view));
    }
    case 'fstatvfs@openssh.com': {
      const [wire] = extensionFields(data, ['bytes'] as const);
      ctx.handles.get(wire);
      return statvfsReply(id, statvfsFor(view));
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
