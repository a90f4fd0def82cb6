import type { DirectoryCap, FileCap } from '../cap/index.js';
import { IsADirectoryError, NotADirectoryError, NotFoundError, PermissionError } from '../errors.js';
import { extendedRequest, extensionWrites } from './extensions.js';
import { DirHandle, ReadHandle } from './handles.js';
import { LIMITS, OPEN_FLAGS, STATUS } from './protocol/constants.js';
import {
  attrsPacket,
  DATA_HEADER_BYTES,
  dataPacket,
  finishDataPacket,
  handlePacket,
  namePacket,
  pathPacket,
  statusPacket,
} from './protocol/replies.js';
import { packetBuffers } from './protocol/packet-buffers.js';
import type { Path, Request, RequestOf, RequestType } from './protocol/requests.js';
import type { WireAttrs } from './protocol/wire.js';
import { mkdir, remove, rename, rmdir, setstat, setstatUpload, type AttrChange } from './tree-ops.js';
import { readlink, realpath, symlink } from './symlink-ops.js';
import type { SessionContext } from './session-context.js';

export type { SessionContext } from './session-context.js';

/** Names per READDIR reply, as OpenSSH's server sends. */
const READDIR_BATCH = 100;

/**
 * One row of the dispatch table, as OpenSSH's sftp-server has one per
 * request type:
 * - `writes`: the request changes something. A read-only session (a read-cap
 *   root, or a gateway run read-only) refuses it here, in one place, with
 *   PERMISSION_DENIED before any lookup, as sftp-server -R does; in an
 *   append-only session it is checked there too against what existed
 *   before the session (append-only.ts);
 * - `shared`: it only reads, so it may run alongside other reads (see
 *   scheduler.ts); everything else runs alone, in arrival order;
 * - `run`: does the work and returns the one reply packet.
 */
export interface Handler<R extends Request> {
  writes(request: R, ctx: SessionContext): boolean;
  shared(request: R, ctx: SessionContext): boolean;
  run(request: R, ctx: SessionContext): Promise<Buffer>;
}

type HandlerTable = { [K in RequestType]: Handler<RequestOf<K>> };

const never = (): boolean => false;
const always = (): boolean => true;

/** A request path that arrived as invalid UTF-8 names nothing: no capstan name can hold such bytes. */
export function pathOf(path: Path): string {
  if (path === null) throw new NotFoundError('no such file');
  return path;
}

function attrChange(attrs: WireAttrs): AttrChange {
  return { size: attrs.size, mode: attrs.mode, atime: attrs.atime, mtime: attrs.mtime };
}

const ok = (id: number): Buffer => statusPacket(id, STATUS.OK);

function isReadHandle(ctx: SessionContext, wire: Buffer): boolean {
  try {
    return ctx.handles.get(wire).kind === 'read';
  } catch {
    return false;
  }
}

export const HANDLERS: HandlerTable = {
  open: {
    writes: (r) => (r.pflags & OPEN_FLAGS.WRITE) !== 0,
    shared: never,
    run: (r, ctx) => open(ctx, r.id, pathOf(r.path), r.pflags, r.attrs.mode),
  },
  close: { writes: never, shared: never, run: (r, ctx) => closeHandle(ctx, r.id, r.handle) },
  read: {
    writes: never,
    shared: (r, ctx) => isReadHandle(ctx, r.handle),
    run: (r, ctx) => read(ctx, r.id, r.handle, r.offset, r.length),
  },
  write: { writes: always, shared: never, run: (r, ctx) => write(ctx, r.id, r.handle, r.offset, r.data) },
  fstat: {
    writes: never,
    shared: (r, ctx) => isReadHandle(ctx, r.handle),
    run: async (r, ctx) => attrsPacket(r.id, fstat(ctx, r.handle)),
  },
  fsetstat: { writes: always, shared: never, run: (r, ctx) => fsetstat(ctx, r.id, r.handle, r.attrs) },
  lstat: { writes: never, shared: always, run: async (r, ctx) => attrsPacket(r.id, await ctx.view.stat(pathOf(r.path), false)) },
  stat: { writes: never, shared: always, run: async (r, ctx) => attrsPacket(r.id, await ctx.view.stat(pathOf(r.path), true)) },
  setstat: {
    writes: always,
    shared: never,
    run: async (r, ctx) => {
      await setstat(ctx.view, pathOf(r.path), attrChange(r.attrs), ctx.quota);
      return ok(r.id);
    },
  },
  opendir: { writes: never, shared: never, run: (r, ctx) => opendir(ctx, r.id, pathOf(r.path)) },
  readdir: { writes: never, shared: never, run: (r, ctx) => readdir(ctx, r.id, r.handle) },
  remove: {
    writes: always,
    shared: never,
    run: async (r, ctx) => {
      const path = pathOf(r.path);
      await remove(ctx.view, path, ctx.quota);
      return ok(r.id);
    },
  },
  mkdir: {
    writes: always,
    shared: never,
    run: async (r, ctx) => {
      await mkdir(ctx.view, pathOf(r.path), attrChange(r.attrs));
      return ok(r.id);
    },
  },
  rmdir: {
    writes: always,
    shared: never,
    run: async (r, ctx) => {
      await rmdir(ctx.view, pathOf(r.path));
      return ok(r.id);
    },
  },
  rename: {
    writes: always,
    shared: never,
    run: async (r, ctx) => {
      // SSH_FXP_RENAME never replaces an existing name, as OpenSSH's server does; posix-rename does.
      await rename(ctx.view, pathOf(r.from), pathOf(r.to), false, ctx.quota);
      return ok(r.id);
    },
  },
  realpath: {
    writes: never,
    shared: always,
    run: async (r, ctx) => {
      const canonical = await realpath(ctx.view, pathOf(r.path));
      return pathPacket(r.id, canonical);
    },
  },
  readlink: {
    writes: never,
    shared: always,
    run: async (r, ctx) => {
      const target = await readlink(ctx.view, pathOf(r.path));
      return pathPacket(r.id, target);
    },
  },
  symlink: {
    writes: always,
    shared: never,
    run: async (r, ctx) => {
      await symlink(ctx.view, r.target, pathOf(r.link), ctx.quota);
      return ok(r.id);
    },
  },
  extended: {
    writes: (r) => extensionWrites(r.name),
    shared: (r) => !extensionWrites(r.name),
    run: (r, ctx) => extendedRequest(ctx, r.id, r.name, r.data),
  },
  unknown: { writes: never, shared: never, run: async (r) => statusPacket(r.id, STATUS.OP_UNSUPPORTED, 'unknown request') },
};

async function open(ctx: SessionContext, id: number, path: string, flags: number, mode: number | undefined): Promise<Buffer> {
  const { view, handles } = ctx;
  handles.ensureRoom();
  if ((flags & OPEN_FLAGS.WRITE) === 0) {
    const node = await view.node(path);
    if (node.kind === 'directory') throw new IsADirectoryError('is a directory');
    if (node.kind !== 'file') throw new PermissionError('this kind of object cannot be read');
    const cap = node.cap as FileCap;
    const reader = await view.tree.openFile(cap);
    const attrs =
      node.loc.kind === 'base' || node.entry === undefined ? view.attrsOfCap(node.cap) : view.attrsOfEntry(node.entry, node.loc.dir);
    const place = node.loc.kind === 'entry' ? { dir: node.loc.dir.cap, name: node.loc.name } : undefined;
    return handlePacket(id, handles.add(new ReadHandle(reader, node.loc.path, attrs, cap, place)));
  }
  const quota = await ctx.quota?.beforeOpen(path);
  const handle = await view.openWrite(
    path,
    {
      create: (flags & OPEN_FLAGS.CREAT) !== 0,
      exclusive: (flags & OPEN_FLAGS.EXCL) !== 0,
      truncate: (flags & OPEN_FLAGS.TRUNC) !== 0,
      append: (flags & OPEN_FLAGS.APPEND) !== 0,
      read: (flags & OPEN_FLAGS.READ) !== 0,
    },
    mode,
  );
  ctx.quota?.opened(handle, quota);
  return handlePacket(id, handles.add(handle));
}

async function closeHandle(ctx: SessionContext, id: number, wire: Buffer): Promise<Buffer> {
  const handle = ctx.handles.get(wire);
  ctx.handles.delete(wire);
  if (handle.kind === 'write') await ctx.commit(handle, true);
  else await ctx.release(handle);
  return ok(id);
}

async function read(ctx: SessionContext, id: number, wire: Buffer, offset: number, length: number): Promise<Buffer> {
  const handle = ctx.handles.get(wire);
  if (handle.kind === 'dir') throw new IsADirectoryError('is a directory');
  if (handle.kind === 'write' && !handle.readable) throw new PermissionError('handle not open for reading');
  const len = Math.min(length, LIMITS.maxReadLength);
  if (handle.kind === 'read') {
    // The file's bytes go straight from the decrypted chunk into the packet,
    // one copy per READ, in a buffer the gateway reuses (packet-buffers.ts).
    // Past the end nothing is taken.
    if (offset >= handle.reader.size || len === 0) return statusPacket(id, STATUS.EOF, 'end of file');
    const packet = packetBuffers.take(DATA_HEADER_BYTES + Math.min(len, handle.reader.size - offset), DATA_HEADER_BYTES);
    const n = await handle.reader.readInto(offset, packet.subarray(DATA_HEADER_BYTES));
    if (n === 0) {
      packetBuffers.release(packet);
      return statusPacket(id, STATUS.EOF, 'end of file');
    }
    ctx.stats.bytesOut += n;
    return finishDataPacket(packet, id, n);
  }
  const data = await handle.read(offset, len);
  if (data.length === 0) return statusPacket(id, STATUS.EOF, 'end of file');
  ctx.stats.bytesOut += data.length;
  return dataPacket(id, data);
}

async function write(ctx: SessionContext, id: number, wire: Buffer, offset: number, data: Buffer): Promise<Buffer> {
  const handle = ctx.handles.get(wire);
  if (handle.kind !== 'write') throw new PermissionError('handle not open for writing');
  await ctx.quota?.beforeWrite(handle, offset, data.length);
  await handle.write(offset, data);
  // The upload copied the bytes: the packet's buffer, if the framer took it from the pool, goes back.
  packetBuffers.release(data);
  ctx.stats.bytesIn += data.length;
  return ok(id);
}

function fstat(ctx: SessionContext, wire: Buffer): WireAttrs {
  const handle = ctx.handles.get(wire);
  if (handle.kind === 'write') return ctx.view.attrsOfUpload(handle);
  return handle.attrs;
}

async function fsetstat(ctx: SessionContext, id: number, wire: Buffer, attrs: WireAttrs): Promise<Buffer> {
  const handle = ctx.handles.get(wire);
  const change = attrChange(attrs);
  if (handle.kind === 'write') await setstatUpload(handle, change, ctx.quota);
  else {
    if (change.size !== undefined) throw new PermissionError('handle not open for writing');
    await setstat(ctx.view, handle.path.canonical, change, ctx.quota);
  }
  return ok(id);
}

async function opendir(ctx: SessionContext, id: number, path: string): Promise<Buffer> {
  const { view, handles } = ctx;
  handles.ensureRoom();
  const node = await view.node(path);
  if (node.kind !== 'directory') throw new NotADirectoryError('not a directory');
  const dir = view.directory(node.cap as DirectoryCap);
  const attrs =
    node.loc.kind === 'base' || node.entry === undefined ? view.attrsOfCap(node.cap) : view.attrsOfEntry(node.entry, node.loc.dir);
  const uploads = view.overlay.names(view.user, dir.cap);
  const entries = dir.list()[Symbol.asyncIterator]();
  return handlePacket(id, handles.add(new DirHandle(node.loc.path, attrs, entries, uploads, view.describer(dir, attrs))));
}

async function readdir(ctx: SessionContext, id: number, wire: Buffer): Promise<Buffer> {
  const handle = ctx.handles.get(wire);
  if (handle.kind !== 'dir') throw new NotADirectoryError('not a directory handle');
  const batch = await handle.next(READDIR_BATCH);
  if (batch.length === 0) return statusPacket(id, STATUS.EOF, 'end of directory');
  return namePacket(id, batch);
}
