import {
  AlreadyExistsError,
  InvalidInputError,
  IsADirectoryError,
  NotADirectoryError,
  NotEmptyError,
  NotFoundError,
  PermissionError,
  TooManyLinksError,
} from '../errors.js';
import type { DirectoryCap, FileCap } from '../cap/index.js';
import { entryUsage } from '../quota/index.js';
import { moveEntry, removeDirectory, type DirEntry, type EntryMetadata } from '../tree/index.js';
import { kindOf, modeDeniesWrite, modeExecutes, sizeOf } from './attrs.js';
import { isWithin } from './paths.js';
import { holds, lacks } from '../events/commit-check.js';
import { eventPathOf, recordChange } from './event-paths.js';
import type { BeforeLink, SessionQuota } from './quota-hooks.js';
import type { EntryLocation, Location, UserTree } from './user-tree.js';
import { WriteHandle } from './write-handle.js';

/**
 * The SFTP operations that change the tree, on top of UserTree's lookups.
 * Semantics follow OpenSSH's sftp-server wherever capstan can (see the notes
 * per function). Symbolic links are in symlink-ops.ts; here a link is an
 * entry like any other: removed and renamed itself, never followed (a
 * last link is followed only by SETSTAT and OPEN).
 */

/** Attribute changes as SETSTAT/FSETSTAT carry them (ssh2 decodes the ATTRS). */
export interface AttrChange {
  size?: number | undefined;
  mode?: number | undefined;
  atime?: number | undefined;
  mtime?: number | undefined;
}

export function hasChange(attrs: AttrChange): boolean {
  return attrs.size !== undefined || attrs.mode !== undefined || attrs.mtime !== undefined;
}

/** MKDIR: a new empty directory; a mode without write bits makes it noWrite. */
export async function mkdir(view: UserTree, raw: string, attrs: AttrChange): Promise<void> {
  const loc = await view.locate(raw);
  if (loc.kind === 'base') throw new AlreadyExistsError('exists');
  view.requireWritable(loc);
  if (view.uploads(loc).length > 0) throw new AlreadyExistsError('exists');
  const metadata: Partial<EntryMetadata> = {};
  if (attrs.mode !== undefined && modeDeniesWrite(attrs.mode)) metadata.noWrite = true;
  await recordChange(view, 'mkdir', loc.path, (begin) =>
    loc.dir.mkdir(loc.name, metadata, { beforeLink: (child) => begin([holds(loc.dir, loc.name, child)]) }),
  );
}

/**
 * RMDIR: only an empty directory; one with uploads of this user still open
 * in it counts as not empty (as on a disk, where the file exists from OPEN
 * on). The directory is sealed before its name is unlinked (removeDirectory,
 * docs/spec/slots.md), so an upload that another session, user or gateway
 * closes into it at the same moment either lands first (and rmdir finds the
 * directory not empty) or fails: never acknowledged into a directory that
 * is gone.
 */
export async function rmdir(view: UserTree, raw: string): Promise<void> {
  const loc = await view.locateEntry(raw);
  view.requireWritable(loc);
  await recordChange(view, 'rmdir', loc.path, (begin) =>
    removeDirectory(loc.dir, loc.name, (entry) => view.tree.directory(entry.cap as DirectoryCap), {
      check: (entry) => {
        if (kindOf(entry.cap) !== 'directory') throw new NotADirectoryError('not a directory');
        if (entry.metadata.noWrite === true) throw new PermissionError('read-only');
        if (view.overlay.hasAny(view.user, entry.cap as DirectoryCap)) throw new NotEmptyError('directory not empty');
      },
      before: (entry) => begin([lacks(loc.dir, loc.name, entry.cap)]),
    }),
  );
}

/** REMOVE: a file (or an upload still open: it then commits nothing, like an unlinked open file). */
export async function remove(view: UserTree, raw: string, quota?: SessionQuota): Promise<void> {
  const loc = await view.locateEntry(raw);
  view.requireWritable(loc);
  // Not while an upload of this name commits (in another session): it is removed or dropped, never both missed.
  await view.withNames([loc], () => removeAt(view, loc, quota));
}

async function removeAt(view: UserTree, loc: EntryLocation, quota: SessionQuota | undefined): Promise<void> {
  const entry = await loc.dir.lookup(loc.name);
  if (entry === undefined && view.uploads(loc).length === 0) throw new NotFoundError('no such file');
  if (entry !== undefined) {
    if (kindOf(entry.cap) === 'directory') throw new IsADirectoryError('is a directory');
    if (entry.metadata.noWrite === true) throw new PermissionError('read-only');
    let removed: DirEntry | undefined;
    await recordChange(view, 'remove', loc.path, async (begin) => {
      await begin([lacks(loc.dir, loc.name, entry.cap)]);
      removed = await loc.dir.unlink(loc.name);
    });
    await quota?.removed(removed);
    view.orphanUploads(loc);
    return;
  }
  view.orphanUploads(loc);
}

/**
 * RENAME (`overwrite` false: fails if the target exists, as OpenSSH's server
 * does for SSH_FXP_RENAME) and posix-rename@openssh.com (`overwrite` true).
 * Within a directory the move is one atomic slot update; across directories
 * it is link-then-unlink (moveEntry: never lost, at worst briefly doubled).
 * A directory replaces only an empty directory (posix-rename, as rename(2)
 * allows: the target is sealed first, so nothing can land in it meanwhile,
 * and unsealed if the rename fails); a file never replaces a directory, and
 * nothing moves below itself. Uploads open on the old name follow the file
 * to its new name; uploads open on a replaced target are orphaned (as
 * writes to a replaced inode vanish).
 */
export async function rename(view: UserTree, fromRaw: string, toRaw: string, overwrite: boolean, quota?: SessionQuota): Promise<void> {
  const from = await view.locateEntry(fromRaw);
  const to = await view.locateEntry(toRaw);
  view.requireWritable(from);
  view.requireWritable(to);
  // Not while an upload of either name commits (in another session): the rename then moves what that
  // commit linked, or the upload before its commit starts, never an upload whose commit chose its name.
  await view.withNames([from, to], () => renameAt(view, from, to, overwrite, quota));
}

async function renameAt(
  view: UserTree,
  from: EntryLocation,
  to: EntryLocation,
  overwrite: boolean,
  quota: SessionQuota | undefined,
): Promise<void> {
  const entry = await from.dir.lookup(from.name);
  if (entry === undefined && view.uploads(from).length === 0) throw new NotFoundError('no such file');
  if (view.sameEntry(from, to)) return;
  if (entry !== undefined && kindOf(entry.cap) === 'directory' && isWithin(to.path, from.path)) {
    throw new InvalidInputError('cannot move a directory below itself');
  }
  const target = await to.dir.lookup(to.name);
  if ((target !== undefined || view.uploads(to).length > 0) && !overwrite) throw new AlreadyExistsError('exists');
  const movingDirectory = entry !== undefined && kindOf(entry.cap) === 'directory';
  if (target !== undefined) {
    if (kindOf(target.cap) === 'directory' && !movingDirectory) throw new IsADirectoryError('is a directory');
    if (kindOf(target.cap) !== 'directory' && movingDirectory) throw new NotADirectoryError('not a directory');
    if (target.metadata.noWrite === true) throw new PermissionError('read-only');
  }
  if (entry !== undefined) {
    // What the move may replace, checked again inside the update that replaces it: the target
    // looked at above, and never a directory other than the sealed one (a racing mkdir).
    const expected = target?.cap.toString();
    const replacing = (existing: DirEntry): void => {
      if (existing.cap.toString() !== expected) throw new AlreadyExistsError('the target changed');
    };
    const sealed = target !== undefined && movingDirectory ? view.tree.directory(target.cap as DirectoryCap) : undefined;
    if (sealed !== undefined && !target?.cap.isWritable) throw new PermissionError('a read-only directory cannot be replaced');
    let replaced: DirEntry | undefined;
    await recordChange(
      view,
      'rename',
      to.path,
      async (begin) => {
        // Committed once the new name holds the entry and the old one does not (a move across
        // directories is two slot updates: a crash between them leaves both names, not committed).
        await begin([holds(to.dir, to.name, entry.cap), lacks(from.dir, from.name, entry.cap)]);
        await sealed?.seal();
        try {
          replaced = await moveEntry(from.dir, from.name, to.dir, to.name, { overwrite, replacing });
        } catch (err) {
          await sealed?.unseal();
          throw err;
        }
      },
      { from: from.path },
    );
    // The moved entry stays in the account; what it replaced does not.
    await quota?.removed(replaced);
    view.orphanUploads(to);
    view.retarget(from, to);
    return;
  } else if (target !== undefined) {
    // Only an upload moves: the name it lands on is replaced now, as rename(2) would.
    await quota?.removed(await to.dir.unlink(to.name));
  }
  view.orphanUploads(to);
  view.retarget(from, to);
}

/**
 * hardlink@openssh.com: the same immutable file cap under a second name
 * (files, and symbolic links, which are copied as links; the source may
 * also be a /uri file cap). The new entry has
 * the source's times, size and execute bits; it is never noWrite.
 */
export async function hardlink(view: UserTree, fromRaw: string, toRaw: string, quota?: SessionQuota): Promise<void> {
  // link(2) does not follow a last symbolic link: the new name is a second link with the same target.
  const { cap, kind, entry } = await view.node(fromRaw, false);
  if (kind !== 'file' && kind !== 'symlink') throw new PermissionError('only files and symbolic links can be hard-linked');
  const to = await view.locateEntry(toRaw);
  view.requireWritable(to);
  if (view.uploads(to).length > 0) throw new AlreadyExistsError('exists');
  const now = Date.now();
  const metadata: EntryMetadata = {
    size: sizeOf(cap, entry?.metadata),
    mtimeMs: entry?.metadata.mtimeMs ?? now,
    ctimeMs: now,
  };
  if (entry?.metadata.atimeMs !== undefined) metadata.atimeMs = entry.metadata.atimeMs;
  if (entry?.metadata.executable === true) metadata.executable = true;
  const link = (beforeLink?: BeforeLink) => to.dir.link(to.name, cap, metadata, { overwrite: false, beforeLink });
  // A second name counts as a second file, as the walk counts it.
  await (quota !== undefined ? quota.link(entryUsage({ cap, metadata }), link) : link());
}

/**
 * SETSTAT on a path. Times and mode go into the entry's metadata (and into
 * any upload open on the name, so its CLOSE keeps them); uid/gid are
 * accepted and ignored (capstan has no owners; refusing would fail every
 * `rsync -a`). A size on a name with open uploads truncates those uploads;
 * on a committed file it writes a new version of that size (a spool pass).
 * On `/` and /uri caps only no-op changes succeed.
 */
export async function setstat(view: UserTree, raw: string, attrs: AttrChange, quota?: SessionQuota): Promise<void> {
  if (!hasChange(attrs)) return;
  const loc = await setstatTarget(view, raw, attrs);
  if (!view.writable) throw new PermissionError('read-only');
  if (loc.kind === 'base') {
    if (attrs.size !== undefined) throw new PermissionError('a root cannot be truncated');
    return;
  }
  view.requireWritable(loc);
  // Not while an upload of this name commits (in another session): its times and mode would be lost.
  await view.withNames([loc], () => setstatAt(view, loc, attrs, quota));
}

async function setstatAt(view: UserTree, loc: EntryLocation, attrs: AttrChange, quota: SessionQuota | undefined): Promise<void> {
  const uploads = view.uploads(loc);
  let entry = await loc.dir.lookup(loc.name);
  if (entry === undefined && uploads.length === 0) throw new NotFoundError('no such file');
  if (attrs.size !== undefined) {
    if (uploads.length > 0) {
      for (const upload of uploads) {
        await quota?.beforeResize(upload, upload.size, attrs.size);
        await upload.truncate(attrs.size);
      }
    } else if (entry !== undefined) {
      if (kindOf(entry.cap) === 'directory') throw new IsADirectoryError('is a directory');
      if (entry.metadata.noWrite === true) throw new PermissionError('read-only');
      if (sizeOf(entry.cap, entry.metadata) !== attrs.size) {
        await rewriteWithSize(view, loc, entry.cap as FileCap, attrs.size, quota);
        entry = await loc.dir.lookup(loc.name);
      }
    }
  }
  const patch: Partial<EntryMetadata> = {};
  if (attrs.mtime !== undefined && attrs.atime !== undefined) {
    patch.mtimeMs = attrs.mtime * 1000;
    patch.atimeMs = attrs.atime * 1000;
    for (const upload of uploads) upload.setTimes(patch.atimeMs, patch.mtimeMs);
  }
  if (attrs.mode !== undefined) {
    patch.noWrite = modeDeniesWrite(attrs.mode);
    // Only a file keeps execute bits (a directory is always searchable; a link shows 0777).
    const file = entry === undefined || kindOf(entry.cap) === 'file';
    if (file) patch.executable = modeExecutes(attrs.mode);
    for (const upload of uploads) {
      upload.setNoWrite(patch.noWrite);
      upload.setExecutable(modeExecutes(attrs.mode));
    }
  }
  if (entry !== undefined && Object.keys(patch).length > 0) await loc.dir.setMetadata(loc.name, patch);
}

/**
 * SETSTAT follows a link to its target, as chmod(2) and utimes(2) do and as
 * OpenSSH's server does. One exception: when the target does not exist (a
 * dangling link, a loop, or one whose target is not there yet), times and mode go
 * to the link itself instead of failing ENOENT. sshfs has no lsetstat and
 * sends rsync's lutimes(2) of a freshly made link as SETSTAT; failing it
 * made `rsync -a` exit 23 on every tree with a dangling link.
 */
async function setstatTarget(view: UserTree, raw: string, attrs: AttrChange): Promise<Location> {
  try {
    const followed = await view.locate(raw, true);
    if (followed.kind === 'base' || attrs.size !== undefined) return followed;
    if ((await followed.dir.lookup(followed.name)) !== undefined || view.uploads(followed).length > 0) return followed;
  } catch (err) {
    const unresolved = err instanceof NotFoundError || err instanceof TooManyLinksError || err instanceof NotADirectoryError;
    if (!unresolved || attrs.size !== undefined) throw err;
  }
  return view.locate(raw, false);
}

/** A committed file cut or extended to `size`: a new version, written through a spool. */
async function rewriteWithSize(view: UserTree, loc: EntryLocation, base: FileCap, size: number, quota?: SessionQuota): Promise<void> {
  if (kindOf(base) !== 'file') throw new PermissionError('cannot write this kind of object');
  const handle = new WriteHandle(
    view.writeDeps,
    { dir: loc.dir, name: loc.name, where: eventPathOf(loc.path) },
    {
      base,
      baseSize: sizeOf(base),
      append: false,
      readable: false,
    },
  );
  try {
    await quota?.beforeResize(undefined, sizeOf(base), size);
    await handle.truncate(size);
    const commit = (beforeLink?: BeforeLink) => handle.commit(beforeLink);
    await (quota !== undefined ? quota.commit(handle, commit) : commit());
  } finally {
    await handle.abandon();
  }
}

/** FSETSTAT on a write handle: applied to the upload, committed at CLOSE. */
export async function setstatUpload(handle: WriteHandle, attrs: AttrChange, quota: SessionQuota | undefined): Promise<void> {
  if (attrs.size !== undefined) {
    await quota?.beforeResize(handle, handle.size, attrs.size);
    await handle.truncate(attrs.size);
  }
  if (attrs.mtime !== undefined && attrs.atime !== undefined) handle.setTimes(attrs.atime * 1000, attrs.mtime * 1000);
  if (attrs.mode !== undefined) {
    handle.setNoWrite(modeDeniesWrite(attrs.mode));
    handle.setExecutable(modeExecutes(attrs.mode));
  }
}
