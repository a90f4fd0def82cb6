import { PermissionError } from '../errors.js';
import type { HandleTable } from './handles.js';
import {
  limitsReply,
  readStrings,
  STATUS,
  STATVFS_FLAG_NOSUID,
  STATVFS_FLAG_RDONLY,
  statvfsReply,
  type PatchedSftp,
  type StatVfs,
} from './protocol.js';
import { checkFileRequest } from './check-file.js';
import { SftpStatusError } from './status.js';
import { hardlink, rename } from './tree-ops.js';
import type { UserTree } from './user-tree.js';
import type { WriteHandle } from './write-handle.js';

/**
 * The OpenSSH extended requests capstan implements (advertised in VERSION,
 * see protocol.ts EXTENSIONS). Anything else is OP_UNSUPPORTED; a payload
 * that does not parse is BAD_MESSAGE.
 */
export interface ExtensionContext {
  sftp: PatchedSftp;
  view: UserTree;
  handles: HandleTable;
  /** Commits a write handle now, keeping it open (fsync). */
  commit(handle: WriteHandle): Promise<void>;
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

function fields(data: Buffer | undefined, kinds: readonly ('utf8' | 'raw')[]): (string | Buffer)[] {
  const out = readStrings(data, kinds);
  if (out === undefined) throw new SftpStatusError(STATUS.BAD_MESSAGE, 'malformed extended request');
  return out;
}

export async function extendedRequest(ctx: ExtensionContext, id: number, name: string, data: Buffer | undefined): Promise<void> {
  const { sftp, view } = ctx;
  switch (name) {
    case 'posix-rename@openssh.com': {
      const [from, to] = fields(data, ['utf8', 'utf8']) as [string, string];
      await rename(view, from, to, true);
      sftp.status(id, STATUS.OK);
      return;
    }
    case 'hardlink@openssh.com': {
      const [from, to] = fields(data, ['utf8', 'utf8']) as [string, string];
      await hardlink(view, from, to);
      sftp.status(id, STATUS.OK);
      return;
    }
    case 'statvfs@openssh.com': {
      const [path] = fields(data, ['utf8']) as [string];
      await view.stat(path); // statvfs(2) of a missing path is ENOENT
      sftp._capstanSendRaw(statvfsReply(id, statvfsFor(view)));
      return;
    }
    case 'fstatvfs@openssh.com': {
      const [wire] = fields(data, ['raw']) as [Buffer];
      ctx.handles.get(wire);
      sftp._capstanSendRaw(statvfsReply(id, statvfsFor(view)));
      return;
    }
    case 'fsync@openssh.com': {
      const [wire] = fields(data, ['raw']) as [Buffer];
      const handle = ctx.handles.get(wire);
      if (handle.kind === 'write') await ctx.commit(handle);
      else if (handle.kind === 'dir') throw new PermissionError('not a file');
      sftp.status(id, STATUS.OK);
      return;
    }
    case 'limits@openssh.com':
      fields(data, []);
      sftp._capstanSendRaw(limitsReply(id, ctx.handles.max));
      return;
    case 'check-file-name':
    case 'check-file-handle':
      await checkFileRequest(ctx, id, name, data);
      return;
    default:
      sftp.status(id, STATUS.OP_UNSUPPORTED, 'extension not supported');
  }
}
