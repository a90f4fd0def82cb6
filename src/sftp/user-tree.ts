import { AlreadyExistsError, IsADirectoryError, NotADirectoryError, NotFoundError, PermissionError } from '../errors.js';
import type { Cap, DirectoryCap, FileCap } from '../cap/index.js';
import type { DirEntry, Directory, Tree } from '../tree/index.js';
import { kindOf, longname, makeAttrs, sizeOf, type NodeKind, type SftpAttrs } from './attrs.js';
import type { EventRecorder } from '../events/api.js';
import { eventPathOf } from './event-paths.js';
import type { UploadOverlay } from './overlay.js';
import { parsePath, type ParsedPath } from './paths.js';
import type { DirListing, ListedItem } from './handles.js';
import { WriteHandle, type WriteHandleDeps } from './write-handle.js';

/**
 * The tree one logged-in user sees: `/` is their root cap, `/uri/CAP` any cap
 * they hold. Resolves paths to directory entries and answers the questions
 * every operation asks (does it exist, may it be written). Mutations live in
 * tree-ops.ts; this file only looks.
 *
 * Write permission needs all of: a writable session (not readOnly, root not a
 * read cap: then nothing anywhere is writable, /uri write caps included), a
 * writable directory cap, and no noWrite on the directory's own entry or
 * (for changing or removing it) on the entry itself.
 */

/** Where a path points: a base cap itself (root, /uri/CAP), or a name in a directory. */
export type Location =
  | { kind: 'base'; path: ParsedPath; cap: Cap }
  | { kind: 'entry'; path: ParsedPath; dir: Directory; dirEntry?: DirEntry | undefined; name: string };

export type EntryLocation = Extract<Location, { kind: 'entry' }>;

export interface UserTreeOptions {
  tree: Tree;
  user: string;
  root: DirectoryCap;
  writable: boolean;
  overlay: UploadOverlay<WriteHandle>;
  writeDeps: WriteHandleDeps;
  /** Where committed changes are reported (none: events off). */
  events?: EventRecorder;
}

export class UserTree {
  readonly tree: Tree;
  readonly user: string;
  readonly root: DirectoryCap;
  /** False for a read-cap root or a read-only gateway: every write is refused. */
  readonly writable: boolean;
  readonly overlay: UploadOverlay<WriteHandle>;
  readonly writeDeps: WriteHandleDeps;
  readonly events?: EventRecorder;

  constructor(opts: UserTreeOptions) {
    this.tree = opts.tree;
    this.user = opts.user;
    this.root = opts.root;
    this.writable = opts.writable && opts.root.isWritable;
    this.overlay = opts.overlay;
    this.writeDeps = opts.writeDeps;
    if (opts.events !== undefined) this.events = opts.events;
  }

  async locate(raw: string): Promise<Location> {
    const path = parsePath(raw);
    const base = path.uriCap ?? this.root;
    if (path.components.length === 0) return { kind: 'base', path, cap: base };
    if (kindOf(base) !== 'directory') throw new NotADirectoryError('not a directory');
    const parentNames = path.components.slice(0, -1);
    const parent = await this.tree.resolve(base as DirectoryCap, parentNames);
    if (parent.type !== 'directory') throw new NotADirectoryError('not a directory');
    return { kind: 'entry', path, dir: this.tree.directory(parent.cap), dirEntry: parent.entry, name: path.components.at(-1)! };
  }

  /** A location that must be a name in a directory (not `/` or a /uri cap itself). */
  async locateEntry(raw: string): Promise<EntryLocation> {
    const loc = await this.locate(raw);
    if (loc.kind === 'base') throw new PermissionError('a root cannot be changed this way');
    return loc;
  }

  /** Throws PermissionError unless entries of this directory may be added, changed or removed. */
  requireWritable(loc: EntryLocation): void {
    if (!this.writable || !loc.dir.writable || loc.dirEntry?.metadata.noWrite === true) {
      throw new PermissionError('read-only');
    }
  }

  uploads(loc: EntryLocation): readonly WriteHandle[] {
    return this.overlay.handles(this.user, loc.dir.cap, loc.name);
  }

  async stat(raw: string): Promise<SftpAttrs> {
    const loc = await this.locate(raw);
    if (loc.kind === 'base') return this.attrsOfCap(loc.cap);
    const upload = this.overlay.lookup(this.user, loc.dir.cap, loc.name);
    if (upload !== undefined) return this.attrsOfUpload(upload);
    const entry = await loc.dir.lookup(loc.name);
    if (entry === undefined) throw new NotFoundError('no such file');
    return this.attrsOfEntry(entry, loc.dir);
  }

  attrsOfCap(cap: Cap): SftpAttrs {
    const kind = kindOf(cap);
    return makeAttrs(kind, undefined, sizeOf(cap), this.writable && kind === 'directory' && cap.isWritable);
  }

  attrsOfEntry(entry: DirEntry, dir: Directory): SftpAttrs {
    const kind = kindOf(entry.cap);
    const writable = this.writable && dir.writable && entry.metadata.noWrite !== true && (kind !== 'directory' || entry.cap.isWritable);
    return makeAttrs(kind, entry.metadata, sizeOf(entry.cap, entry.metadata), writable);
  }

  attrsOfUpload(upload: WriteHandle): SftpAttrs {
    return makeAttrs('file', { mtimeMs: upload.mtimeMs, atimeMs: upload.atimeMs }, upload.size, true);
  }

  /** The line builder for a directory's READDIR. */
  describer(dir: Directory, dirAttrs: SftpAttrs): (item: ListedItem) => DirListing {
    return (item) => {
      let attrs: SftpAttrs;
      if (!('entry' in item) && !('upload' in item))
        attrs = dirAttrs; // '.' and '..' (the parent's own attrs are not worth a lookup)
      else if (item.upload !== undefined) attrs = this.attrsOfUpload(item.upload as WriteHandle);
      else attrs = this.attrsOfEntry(item.entry!, dir);
      return { filename: item.name, longname: longname(item.name, attrs, this.user), attrs };
    };
  }

  /** The node a path names, for open and opendir. */
  async node(raw: string): Promise<{ loc: Location; kind: NodeKind; cap: Cap; entry?: DirEntry }> {
    const loc = await this.locate(raw);
    if (loc.kind === 'base') return { loc, kind: kindOf(loc.cap), cap: loc.cap };
    const entry = await loc.dir.lookup(loc.name);
    if (entry === undefined) throw new NotFoundError('no such file');
    return { loc, kind: kindOf(entry.cap), cap: entry.cap, entry };
  }

  /**
   * A write handle on `raw` (flags already decoded). The name may not exist
   * yet (create), may exist (overwrite in place, or truncate), may be being
   * written by another handle of this user (each handle commits its own
   * version at CLOSE; the last CLOSE wins, as with two writers on one file).
   */
  async openWrite(
    raw: string,
    flags: { create: boolean; exclusive: boolean; truncate: boolean; append: boolean; read: boolean },
  ): Promise<WriteHandle> {
    const loc = await this.locate(raw);
    if (loc.kind === 'base') {
      if (kindOf(loc.cap) === 'directory') throw new IsADirectoryError('is a directory');
      throw new PermissionError('read-only');
    }
    this.requireWritable(loc);
    const entry = await loc.dir.lookup(loc.name);
    const exists = entry !== undefined || this.uploads(loc).length > 0;
    if (entry !== undefined && kindOf(entry.cap) === 'directory') throw new IsADirectoryError('is a directory');
    if (exists && flags.create && flags.exclusive) throw new AlreadyExistsError('already exists');
    if (!exists && !flags.create) throw new NotFoundError('no such file');
    if (entry?.metadata.noWrite === true) throw new PermissionError('read-only');
    let base: FileCap | undefined;
    if (entry !== undefined && !flags.truncate) {
      if (kindOf(entry.cap) !== 'file') throw new PermissionError('cannot write this kind of object');
      base = entry.cap as FileCap;
    }
    const handle = new WriteHandle(
      this.writeDeps,
      { dir: loc.dir, name: loc.name, where: eventPathOf(loc.path) },
      {
        base,
        baseSize: base !== undefined ? sizeOf(base) : undefined,
        append: flags.append,
        readable: flags.read,
      },
    );
    this.overlay.add(this.user, loc.dir.cap, loc.name, handle);
    return handle;
  }

  /** Stops showing a handle's upload (it committed, failed or was abandoned). */
  forget(handle: WriteHandle): void {
    this.overlay.remove(this.user, handle.target.dir.cap, handle.target.name, handle);
  }

  /** Points open uploads on a name at its new name (rename of an open file). */
  retarget(from: EntryLocation, to: EntryLocation): void {
    for (const handle of [...this.uploads(from)]) {
      this.forget(handle);
      handle.target = { dir: to.dir, name: to.name, where: eventPathOf(to.path) };
      this.overlay.add(this.user, to.dir.cap, to.name, handle);
    }
  }

  /** Uploads on a name that was removed or replaced: they will commit nothing. */
  orphanUploads(loc: EntryLocation): void {
    for (const handle of [...this.uploads(loc)]) {
      this.forget(handle);
      handle.orphaned = true;
    }
  }

  sameEntry(a: EntryLocation, b: EntryLocation): boolean {
    return a.name === b.name && Buffer.compare(Buffer.from(a.dir.cap.storageIndex), Buffer.from(b.dir.cap.storageIndex)) === 0;
  }
}
