import { AlreadyExistsError, IsADirectoryError, NotADirectoryError, NotFoundError, PermissionError } from '../errors.js';
import { SymlinkTarget, type Cap, type DirectoryCap, type FileCap } from '../cap/index.js';
import { resolvePath, type DirEntry, type Directory, type Tree } from '../tree/index.js';
import { kindOf, longname, makeAttrs, modeExecutes, sizeOf, type NodeKind, type SftpAttrs } from './attrs.js';
import type { EventRecorder } from '../events/api.js';
import { eventPathOf } from './event-paths.js';
import type { UploadOverlay } from './overlay.js';
import { parsePath, URI_PREFIX, type ParsedPath } from './paths.js';
import type { DirListing, ListedItem } from './handles.js';
import { WriteHandle, type NameLock, type WriteHandleDeps } from './write-handle.js';
import { isSnapshotsFolder, SNAPSHOTS_DIR, SnapshotsFolder, snapshotPath } from './snapshots-folder.js';

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
  | {
      kind: 'entry';
      path: ParsedPath;
      dir: Directory;
      dirEntry?: DirEntry | undefined;
      name: string;
      /** What the walk found under `name`, and the overlay's removals before it looked (absent: it did not look). */
      found?: { entry: DirEntry | undefined; removals: number };
    };

export type EntryLocation = Extract<Location, { kind: 'entry' }>;

export interface UserTreeOptions {
  tree: Tree;
  user: string;
  root: DirectoryCap;
  writable: boolean;
  overlay: UploadOverlay<WriteHandle>;
  writeDeps: WriteHandleDeps;
  /** Where committed changes are reported (none: events off). */
  events?: EventRecorder | undefined;
  /** Show the root's snapshots under /.snapshots/ (a writable root only). */
  snapshots?: boolean;
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
  /** /.snapshots/ is served (snapshots-folder.ts). */
  readonly snapshots: boolean;
  /** What this user's open uploads commit under (UploadOverlay.exclusive). */
  readonly #nameLock: NameLock;

  constructor(opts: UserTreeOptions) {
    this.tree = opts.tree;
    this.user = opts.user;
    this.root = opts.root;
    this.writable = opts.writable && opts.root.isWritable;
    this.overlay = opts.overlay;
    this.writeDeps = opts.writeDeps;
    if (opts.events !== undefined) this.events = opts.events;
    this.snapshots = opts.snapshots === true && this.writable;
    this.#nameLock = (target, fn) => this.overlay.exclusive(this.user, [{ dir: target.dir.cap, name: target.name }], fn);
  }

  /** The Directory a directory cap opens: the snapshots folder for its own cap. */
  directory(cap: DirectoryCap): Directory {
    return isSnapshotsFolder(cap) ? new SnapshotsFolder(this.tree, this.root) : this.tree.directory(cap);
  }

  /**
   * Where `raw` leads. Symbolic links on the way are followed inside the
   * path's base (src/tree/symlinks.ts: chroot semantics); the last one only
   * with `followLast`. The location's `path` is where the walk ended (the
   * link's target, once followed), which events and prefix checks use.
   */
  async locate(raw: string, followLast = false): Promise<Location> {
    let requested = parsePath(raw);
    if (this.snapshots && requested.uriCap === undefined && requested.components[0] === SNAPSHOTS_DIR) {
      requested = await snapshotPath(this.tree, this.root, requested);
    }
    const base = requested.uriCap ?? this.root;
    if (requested.components.length === 0) return { kind: 'base', path: requested, cap: base };
    const removals = this.overlay.removals;
    if (isSnapshotsFolder(base)) {
      // A name the folder does not hold: nothing below it, and nothing can be made there.
      if (requested.components.length > 1) throw new NotFoundError('no such snapshot');
      return { kind: 'entry', path: requested, dir: this.directory(base as DirectoryCap), name: requested.components[0]! };
    }
    if (kindOf(base) !== 'directory') throw new NotADirectoryError('not a directory');
    const walk = await resolvePath(this.tree, base as DirectoryCap, requested.components, followLast);
    const names = walk.frames.map((f) => f.name);
    if (walk.name === undefined) {
      const own = walk.frames.at(-1);
      if (own === undefined) return { kind: 'base', path: pathAt(requested, []), cap: base };
      const parent = walk.frames.at(-2);
      return {
        kind: 'entry',
        path: pathAt(requested, names),
        dir: this.directory(parent?.cap ?? (base as DirectoryCap)),
        dirEntry: parent?.entry,
        name: own.name,
        found: { entry: own.entry, removals },
      };
    }
    const parent = walk.frames.at(-1);
    return {
      kind: 'entry',
      path: pathAt(requested, [...names, walk.name]),
      dir: this.directory(parent?.cap ?? (base as DirectoryCap)),
      dirEntry: parent?.entry,
      name: walk.name,
      found: { entry: walk.entry, removals },
    };
  }

  /** A location that must be a name in a directory (not `/` or a /uri cap itself); a last link is not followed. */
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

  /**
   * The entry under a name, once no upload of this user is committing
   * there: a file closed on one connection and opened again on another
   * (sshfs -o max_conns; git writes COMMIT_EDITMSG and reads it back) is
   * opened as that CLOSE committed it, and an append starts from it.
   */
  async committedEntry(loc: EntryLocation): Promise<DirEntry | undefined> {
    if (this.uploads(loc).length > 0) return this.withNames([loc], () => loc.dir.lookup(loc.name));
    const walked = this.#walked(loc);
    return walked !== undefined ? walked.entry : loc.dir.lookup(loc.name);
  }

  /**
   * What locate's walk found under the name, unless a handle left the
   * overlay since it looked (an upload that was committing there may have
   * linked a newer entry meanwhile: then look again). Saves STAT and OPEN a
   * second lookup of the same name.
   */
  #walked(loc: EntryLocation): { entry: DirEntry | undefined } | undefined {
    return loc.found !== undefined && loc.found.removals === this.overlay.removals ? loc.found : undefined;
  }

  /**
   * Runs fn while no upload of this user commits under any of these names
   * and no other call holds them: what fn sees of uploads and entries there
   * stays as it saw it (tree-ops.ts: rename, remove, setstat).
   */
  withNames<R>(locs: readonly EntryLocation[], fn: () => Promise<R>): Promise<R> {
    return this.overlay.exclusive(
      this.user,
      locs.map((l) => ({ dir: l.dir.cap, name: l.name })),
      fn,
    );
  }

  /** STAT (`followLast`) or LSTAT (the link itself). */
  async stat(raw: string, followLast: boolean): Promise<SftpAttrs> {
    const loc = await this.locate(raw, followLast);
    if (loc.kind === 'base') return this.attrsOfCap(loc.cap);
    const upload = this.overlay.lookup(this.user, loc.dir.cap, loc.name);
    if (upload !== undefined) return this.attrsOfUpload(upload);
    const walked = this.#walked(loc);
    const entry = walked !== undefined ? walked.entry : await loc.dir.lookup(loc.name);
    if (entry === undefined) throw NotFoundError.answer('no such file');
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
    return makeAttrs('file', { mtimeMs: upload.mtimeMs, atimeMs: upload.atimeMs, executable: upload.executable }, upload.size, true);
  }

  /** The line builder for a directory's READDIR. */
  describer(dir: Directory, dirAttrs: SftpAttrs): (item: ListedItem) => DirListing {
    return (item) => {
      let attrs: SftpAttrs;
      if (!('entry' in item) && !('upload' in item))
        attrs = dirAttrs; // '.' and '..' (the parent's own attrs are not worth a lookup)
      else if (item.upload !== undefined) attrs = this.attrsOfUpload(item.upload as WriteHandle);
      else attrs = this.attrsOfEntry(item.entry!, dir);
      const link = 'entry' in item && item.entry?.cap instanceof SymlinkTarget ? shownTarget(item.entry.cap) : undefined;
      return { filename: item.name, longname: longname(item.name, attrs, this.user, link), attrs };
    };
  }

  /** The node a path names, for open and opendir (links followed unless `followLast` is false). */
  async node(raw: string, followLast = true): Promise<{ loc: Location; kind: NodeKind; cap: Cap; entry?: DirEntry }> {
    const loc = await this.locate(raw, followLast);
    if (loc.kind === 'base') return { loc, kind: kindOf(loc.cap), cap: loc.cap };
    const entry = await this.committedEntry(loc);
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
    /** OPEN's permissions: their execute bits make a file this creates executable (as open(2)'s mode; writes are not refused). */
    mode?: number | undefined,
  ): Promise<WriteHandle> {
    // open(2) follows a link, also to create its missing target (inside the base, as every walk);
    // with O_CREAT|O_EXCL it does not, and an existing link is EEXIST.
    const loc = await this.locate(raw, !(flags.create && flags.exclusive));
    if (loc.kind === 'base') {
      if (kindOf(loc.cap) === 'directory') throw new IsADirectoryError('is a directory');
      throw new PermissionError('read-only');
    }
    this.requireWritable(loc);
    const entry = await this.committedEntry(loc);
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
        executable: entry?.metadata.executable === true,
        nameLock: this.#nameLock,
      },
    );
    if (!exists && mode !== undefined && modeExecutes(mode)) handle.setExecutable(true);
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

/** The path a walk ended at, under the same base as the path that was asked for. */
function pathAt(requested: ParsedPath, components: readonly string[]): ParsedPath {
  const base = requested.shownBase ?? (requested.uriCap !== undefined ? [URI_PREFIX, requested.uriCap.toString()] : []);
  const shown = [...base, ...components];
  return { uriCap: requested.uriCap, components, canonical: '/' + shown.join('/'), shownBase: requested.shownBase };
}

/** A link target for display only (a long listing): bytes that are not UTF-8 show as U+FFFD. */
export function shownTarget(link: SymlinkTarget): string {
  return Buffer.from(link.target).toString('utf8');
}
