import type { Attributes } from 'ssh2';
import type { DirectoryCap, FileCap } from '../cap/index.js';
import { IsADirectoryError, NotADirectoryError, PermissionError } from '../errors.js';
import type { Logger } from '../log.js';
import { extendedRequest } from './extensions.js';
import { DirHandle, HandleTable, ReadHandle, type Handle } from './handles.js';
import { parsePath } from './paths.js';
import { EXTENSIONS, LIMITS, OPEN_FLAGS, STATUS, VERSION_PACKET, type PatchedSftp } from './protocol.js';
import type { Limits } from './limits.js';
import type { QuotaGuard } from '../quota/index.js';
import { SessionQuota } from './quota-hooks.js';
import { RequestScheduler } from './scheduler.js';
import type { GatewayStats } from './stats.js';
import { toSftpStatus } from './status.js';
import { mkdir, remove, rename, rmdir, setstat, setstatUpload, type AttrChange } from './tree-ops.js';
import type { UserTree } from './user-tree.js';
import type { WriteHandle } from './write-handle.js';
import { MAX_OUTPUT_BACKLOG, OutputRoom } from './output-room.js';

/** Names per READDIR reply, as OpenSSH's server sends. */
const READDIR_BATCH = 100;

export interface SftpSessionOptions {
  view: UserTree;
  logger: Logger;
  stats: GatewayStats;
  /** Called when a request arrives and when one finishes: the connection's idle timer. */
  onActivity(): void;
  /** Stop (true) or resume (false) reading the connection's socket. */
  onPressure(paused: boolean): void;
  /** Quota checks and usage deltas (src/quota/guard.ts states the exact semantics); none: no quotas. */
  quota?: QuotaGuard | undefined;
  /** Per-session bounds (see limits.ts); defaults as there. */
  limits?: Pick<Limits, 'maxHandles' | 'maxPendingRequests' | 'maxPendingBytes' | 'maxOutputBacklog'>;
}

function attrChange(attrs: Attributes | undefined): AttrChange {
  return { size: attrs?.size, mode: attrs?.mode, atime: attrs?.atime, mtime: attrs?.mtime };
}

/**
 * One SFTP session (one `sftp` subsystem channel): decodes nothing itself
 * (ssh2 does), answers every request through the scheduler, owns the
 * session's handles, and abandons uncommitted uploads when the channel goes.
 * Each request answers exactly once: a status, or its data.
 */
export class SftpSession {
  readonly #sftp: PatchedSftp;
  readonly #view: UserTree;
  readonly #log: Logger;
  readonly #stats: GatewayStats;
  readonly #handles: HandleTable;
  readonly #scheduler: RequestScheduler;
  readonly #output: OutputRoom;
  readonly #quota: SessionQuota | undefined;
  readonly #onActivity: () => void;
  #closed = false;
  #finished: Promise<void> | undefined;

  constructor(sftp: PatchedSftp, opts: SftpSessionOptions) {
    this.#sftp = sftp;
    this.#view = opts.view;
    this.#log = opts.logger;
    this.#stats = opts.stats;
    this.#onActivity = opts.onActivity;
    this.#handles = new HandleTable(opts.limits?.maxHandles);
    this.#output = new OutputRoom(
      () => sftp._capstanBacklog(),
      opts.limits?.maxOutputBacklog ?? MAX_OUTPUT_BACKLOG,
      () => this.#closed,
    );
    this.#quota = opts.quota !== undefined ? new SessionQuota(opts.quota, opts.view) : undefined;
    this.#scheduler = new RequestScheduler({
      ...(opts.limits !== undefined ? { highWaterBytes: opts.limits.maxPendingBytes, maxQueued: opts.limits.maxPendingRequests } : {}),
      onPressure: opts.onPressure,
      onTaskError: (err) => this.#log.error({ err }, 'SFTP request handler threw'),
    });
    // Must be set before the client's INIT arrives; accept() returned just now, so it has not.
    sftp._capstanVersion = VERSION_PACKET;
    this.#bind();
  }

  /** Resolves when nothing is running (for a graceful shutdown). */
  idle(): Promise<void> {
    return this.#scheduler.idle();
  }

  /** Ends the session: queued requests are dropped, running ones finish, uploads not committed are abandoned. */
  close(): Promise<void> {
    if (this.#finished) return this.#finished;
    this.#closed = true;
    this.#finished = (async () => {
      await this.#scheduler.close();
      for (const handle of this.#handles.drain()) await this.#release(handle);
    })();
    return this.#finished;
  }

  #bind(): void {
    const s = this.#sftp;
    s.on('error', (err: Error) => this.#log.info({ err: err.message }, 'SFTP protocol error; closing session'));
    s.on('close', () => void this.close());
    // The client's EOF: it sends nothing more. Answer what it already sent, then close the channel (as
    // sftp-server exits on EOF and sshd closes the channel), or the client waits for that close forever.
    s.on(
      'end',
      () =>
        void this.#scheduler.idle().then(() => {
          try {
            this.#sftp._capstanExit(0);
            this.#sftp.end();
          } catch {
            // the connection went first; nothing left to close
          }
        }),
    );
    s.on('OPEN', (id: number, path: string, flags: number) => this.#do(id, 'open', true, 0, () => this.#open(id, path, flags)));
    s.on('CLOSE', (id: number, h: Buffer) => this.#do(id, 'close', true, 0, () => this.#closeHandle(id, h)));
    s.on('READ', (id: number, h: Buffer, offset: number, len: number) =>
      this.#do(id, 'read', !this.#isReadOnlyHandle(h), 0, () => this.#read(id, h, offset, len)),
    );
    s.on('WRITE', (id: number, h: Buffer, offset: number, data: Buffer) =>
      this.#do(id, 'write', true, data.length, () => this.#write(id, h, offset, data)),
    );
    s.on('FSTAT', (id: number, h: Buffer) =>
      this.#do(id, 'fstat', !this.#isReadOnlyHandle(h), 0, async () => {
        this.#sftp.attrs(id, this.#fstat(h));
      }),
    );
    s.on('FSETSTAT', (id: number, h: Buffer, attrs: Attributes) => this.#do(id, 'fsetstat', true, 0, () => this.#fsetstat(id, h, attrs)));
    s.on('OPENDIR', (id: number, path: string) => this.#do(id, 'opendir', true, 0, () => this.#opendir(id, path)));
    s.on('READDIR', (id: number, h: Buffer) => this.#do(id, 'readdir', true, 0, () => this.#readdir(id, h)));
    s.on('STAT', (id: number, path: string) => this.#do(id, 'stat', false, 0, () => this.#stat(id, path)));
    s.on('LSTAT', (id: number, path: string) => this.#do(id, 'lstat', false, 0, () => this.#stat(id, path)));
    s.on('SETSTAT', (id: number, path: string, attrs: Attributes) =>
      this.#do(id, 'setstat', true, 0, () => this.#ok(id, setstat(this.#view, path, attrChange(attrs)))),
    );
    s.on('REMOVE', (id: number, path: string) => this.#do(id, 'remove', true, 0, () => this.#ok(id, this.#remove(path))));
    s.on('MKDIR', (id: number, path: string, attrs: Attributes) =>
      this.#do(id, 'mkdir', true, 0, () => this.#ok(id, mkdir(this.#view, path, attrChange(attrs)))),
    );
    s.on('RMDIR', (id: number, path: string) => this.#do(id, 'rmdir', true, 0, () => this.#ok(id, rmdir(this.#view, path))));
    s.on('RENAME', (id: number, from: string, to: string) =>
      this.#do(id, 'rename', true, 0, () => this.#ok(id, rename(this.#view, from, to, false))),
    );
    s.on('REALPATH', (id: number, path: string) =>
      this.#do(id, 'realpath', false, 0, async () => {
        const canonical = parsePath(path).canonical;
        this.#sftp.name(id, [{ filename: canonical, longname: canonical, attrs: {} as Attributes }]);
      }),
    );
    // No symlinks in capstan: a name always holds a cap, never a path.
    const noLinks = (id: number) => async () => this.#sftp.status(id, STATUS.OP_UNSUPPORTED, 'symbolic links are not supported');
    s.on('READLINK', (id: number) => this.#do(id, 'readlink', false, 0, noLinks(id)));
    s.on('SYMLINK', (id: number) => this.#do(id, 'symlink', false, 0, noLinks(id)));
    s.on('EXTENDED', (id: number, name: string, data: Buffer | undefined) => {
      const known = EXTENSIONS.some(([n]) => n === name);
      // statvfs and limits only read; the rest change things or touch a write handle.
      const shared = name === 'limits@openssh.com' || name === 'statvfs@openssh.com';
      this.#do(id, known ? name : 'extended', !shared, 0, () => extendedRequest(this.#extensionContext(), id, name, data));
    });
  }

  /** Queues a request; its answer is sent by `run`, or an error status if it throws. */
  #do(id: number, op: string, exclusive: boolean, bytes: number, run: () => Promise<void>): void {
    this.#onActivity();
    this.#scheduler.push({
      exclusive,
      bytes,
      run: async () => {
        if (this.#closed) return;
        try {
          // Every reply waits for room, not only READ data: a client sending thousands of STATs
          // without reading the answers would otherwise grow the output without bound. Waiting
          // here keeps requests queued, and the queue's bound then stops reading the socket.
          await this.#output.wait();
          if (this.#closed) return;
          await run();
        } catch (err) {
          const { code, message } = toSftpStatus(err, this.#log, op);
          this.#log.debug({ op, status: code }, 'SFTP request failed');
          this.#sftp.status(id, code, message);
        }
        this.#onActivity();
      },
    });
  }

  async #ok(id: number, work: Promise<void>): Promise<void> {
    await work;
    this.#sftp.status(id, STATUS.OK);
  }

  #isReadOnlyHandle(wire: Buffer): boolean {
    try {
      return this.#handles.get(wire).kind === 'read';
    } catch {
      return false;
    }
  }

  async #open(id: number, path: string, flags: number): Promise<void> {
    this.#handles.ensureRoom();
    if ((flags & OPEN_FLAGS.WRITE) === 0) {
      const node = await this.#view.node(path);
      if (node.kind === 'directory') throw new IsADirectoryError('is a directory');
      if (node.kind !== 'file') throw new PermissionError('this kind of object cannot be read');
      const reader = await this.#view.tree.openFile(node.cap as FileCap);
      const attrs =
        node.loc.kind === 'base' || node.entry === undefined
          ? this.#view.attrsOfCap(node.cap)
          : this.#view.attrsOfEntry(node.entry, node.loc.dir);
      this.#sftp.handle(id, this.#handles.add(new ReadHandle(reader, node.loc.path, attrs)));
      return;
    }
    const quota = await this.#quota?.beforeOpen(path);
    const handle = await this.#view.openWrite(path, {
      create: (flags & OPEN_FLAGS.CREAT) !== 0,
      exclusive: (flags & OPEN_FLAGS.EXCL) !== 0,
      truncate: (flags & OPEN_FLAGS.TRUNC) !== 0,
      append: (flags & OPEN_FLAGS.APPEND) !== 0,
      read: (flags & OPEN_FLAGS.READ) !== 0,
    });
    this.#quota?.opened(handle, quota);
    this.#sftp.handle(id, this.#handles.add(handle));
  }

  #remove(path: string): Promise<void> {
    const run = () => remove(this.#view, path);
    return this.#quota !== undefined ? this.#quota.remove(path, run) : run();
  }

  async #closeHandle(id: number, wire: Buffer): Promise<void> {
    const handle = this.#handles.get(wire);
    this.#handles.delete(wire);
    if (handle.kind === 'write') await this.#commit(handle, true);
    else await this.#release(handle);
    this.#sftp.status(id, STATUS.OK);
  }

  /** CLOSE (final) or fsync: link the handle's content under its name; count and log the outcome. */
  async #commit(handle: WriteHandle, final: boolean): Promise<void> {
    const mode = handle.mode;
    const started = performance.now();
    try {
      const commit = () => handle.commit();
      if (await (this.#quota !== undefined ? this.#quota.commit(handle, commit) : commit())) {
        this.#stats.uploadsCommitted++;
        this.#log.debug({ event: 'commit', mode, size: handle.size, ms: Math.round(performance.now() - started) }, 'upload committed');
      }
    } catch (err) {
      this.#stats.uploadsFailed++;
      this.#log.warn({ event: 'upload_failed', err: (err as Error).name }, 'upload not committed; previous version kept');
      throw err;
    } finally {
      if (final) await this.#release(handle);
    }
  }

  async #release(handle: Handle): Promise<void> {
    if (handle.kind === 'dir') handle.close();
    else if (handle.kind === 'write') {
      this.#view.forget(handle);
      await handle.abandon();
    }
  }

  async #read(id: number, wire: Buffer, offset: number, length: number): Promise<void> {
    const handle = this.#handles.get(wire);
    if (handle.kind === 'dir') throw new IsADirectoryError('is a directory');
    if (handle.kind === 'write' && !handle.readable) throw new PermissionError('handle not open for reading');
    await this.#output.wait();
    const len = Math.min(length, LIMITS.maxReadLength);
    const data = handle.kind === 'read' ? await handle.reader.read(offset, len) : await handle.read(offset, len);
    if (data.length === 0) {
      this.#sftp.status(id, STATUS.EOF);
      return;
    }
    this.#stats.bytesOut += data.length;
    this.#sftp.data(id, Buffer.from(data.buffer, data.byteOffset, data.length));
  }

  async #write(id: number, wire: Buffer, offset: number, data: Buffer): Promise<void> {
    const handle = this.#handles.get(wire);
    if (handle.kind !== 'write') throw new PermissionError('handle not open for writing');
    await this.#quota?.beforeWrite(handle, offset, data.length);
    await handle.write(offset, data);
    this.#stats.bytesIn += data.length;
    this.#sftp.status(id, STATUS.OK);
  }

  #fstat(wire: Buffer): Attributes {
    const handle = this.#handles.get(wire);
    if (handle.kind === 'write') return this.#view.attrsOfUpload(handle) as Attributes;
    return handle.attrs as Attributes;
  }

  async #fsetstat(id: number, wire: Buffer, attrs: Attributes): Promise<void> {
    const handle = this.#handles.get(wire);
    const change = attrChange(attrs);
    if (handle.kind === 'write') await setstatUpload(handle, change);
    else {
      if (change.size !== undefined) throw new PermissionError('handle not open for writing');
      await setstat(this.#view, handle.path.canonical, change);
    }
    this.#sftp.status(id, STATUS.OK);
  }

  async #stat(id: number, path: string): Promise<void> {
    this.#sftp.attrs(id, (await this.#view.stat(path)) as Attributes);
  }

  async #opendir(id: number, path: string): Promise<void> {
    this.#handles.ensureRoom();
    const node = await this.#view.node(path);
    if (node.kind !== 'directory') throw new NotADirectoryError('not a directory');
    const dir = this.#view.tree.directory(node.cap as DirectoryCap);
    const attrs =
      node.loc.kind === 'base' || node.entry === undefined
        ? this.#view.attrsOfCap(node.cap)
        : this.#view.attrsOfEntry(node.entry, node.loc.dir);
    const uploads = this.#view.overlay.names(this.#view.user, dir.cap);
    const entries = dir.list()[Symbol.asyncIterator]();
    const handle = new DirHandle(node.loc.path, attrs, entries, uploads, this.#view.describer(dir, attrs));
    this.#sftp.handle(id, this.#handles.add(handle));
  }

  async #readdir(id: number, wire: Buffer): Promise<void> {
    const handle = this.#handles.get(wire);
    if (handle.kind !== 'dir') throw new NotADirectoryError('not a directory handle');
    const batch = await handle.next(READDIR_BATCH);
    if (batch.length === 0) this.#sftp.status(id, STATUS.EOF);
    else
      this.#sftp.name(
        id,
        batch.map((l) => ({ filename: l.filename, longname: l.longname, attrs: l.attrs as Attributes })),
      );
  }

  #extensionContext() {
    return {
      sftp: this.#sftp,
      view: this.#view,
      handles: this.#handles,
      commit: (h: WriteHandle) => this.#commit(h, false),
    };
  }
}
