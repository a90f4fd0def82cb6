import type { FileCap } from '../cap/index.js';
import { IsADirectoryError } from '../errors.js';
import { recordAround, type ChangeInput, type EventRecorder } from '../events/api.js';
import { holds } from '../events/commit-check.js';
import type { Directory, EntryMetadata, FileReader, FileWriter, LinkOptions, Tree, UploadResult } from '../tree/index.js';
import type { EventPath } from './event-paths.js';
import type { OverlayItem } from './overlay.js';
import { STATUS } from './protocol/constants.js';
import { SftpStatusError } from './status.js';

/**
 * One file open for writing: close-on-write, streaming when it can.
 *
 * States (content = what CLOSE would commit):
 * - fresh:  a new or truncated file, nothing written yet (content empty);
 * - stream: every write so far landed at the end, in order: the bytes went
 *           straight into a FileWriter (chunked, encrypted, stored as they
 *           come), so CLOSE only writes the manifest, whatever the size;
 * - clean:  an existing file opened without TRUNC and not changed yet:
 *           content is `base`; reads come from it;
 * - spool:  anything else (a write not at the end, a truncate or extend, a
 *           read of data written through this handle): the bytes written
 *           live in an EncryptedSpool file in the spool directory, over the
 *           content so far as its base (read where not overwritten; past
 *           the base, zeros), and CLOSE streams the result into a
 *           FileWriter (one pass over the file).
 * Moves: fresh→stream on a write at 0; clean→stream on a write at the end
 * (resume, append: the old content is piped into the writer first, then the
 * new bytes follow); stream/clean/fresh→spool on anything out of order (a
 * partial stream is finished and becomes the spool's base; nothing is
 * copied, so the move costs the same for any size). Truncating to
 * 0 goes back to fresh. After a commit (CLOSE or fsync) the handle is clean
 * with the committed file as base. relink (copy-data of a whole file into a
 * handle still empty) makes it clean with that file as base, but dirty: CLOSE
 * then links the same cap, without reading or writing a byte.
 *
 * The caller (the session's scheduler) never runs two methods of one handle
 * at once, and every method finishes its I/O before resolving, so the
 * writer's and the spool's backpressure reach the client: a WRITE is not
 * answered until its bytes were accepted. Nor does write() keep `data` once
 * it resolved (the writer and the spool copy it): the WRITE handler gives
 * the packet's buffer back to the gateway's pool then (packet-buffers.ts).
 */

/** The spool as this handle uses it (src/sftp/spool.ts EncryptedSpool). */
export interface Spool {
  readonly size: number;
  /** MUST NOT keep `data` after it resolves: the caller reuses its memory. */
  write(offset: number, data: Uint8Array): Promise<void>;
  read(offset: number, length: number): Promise<Uint8Array>;
  truncate(size: number): Promise<void>;
  stream(): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

export interface WriteHandleDeps {
  tree: Tree;
  convergence: Uint8Array;
  /** A new spool holding `base`'s bytes until they are overwritten (spool.ts); the base MUST stay readable until the spool closes. */
  createSpool(base?: FileReader): Promise<Spool>;
  /** Where committed uploads are reported (none: events off), and for whom. */
  events?: EventRecorder;
  user?: string;
}

/** Where the handle commits; rename of an open file moves it (see retarget). */
export interface WriteTarget {
  dir: Directory;
  name: string;
  /** The target as an event names it (see src/sftp/event-paths.ts); set by whoever opens or moves the handle. */
  where?: EventPath;
}

/**
 * Runs fn while no rename, remove, setstat or OPEN of the target's name
 * runs in another session (UploadOverlay.exclusive); a commit takes it for
 * its whole run, so those see either the upload or the file it committed.
 */
export type NameLock = <R>(target: WriteTarget, fn: () => Promise<R>) => Promise<R>;

type State =
  | { kind: 'fresh' }
  | { kind: 'stream'; writer: FileWriter }
  | { kind: 'clean'; base: FileCap; reader?: FileReader }
  | { kind: 'spool'; spool: Spool; base: FileReader | undefined }
  | { kind: 'broken' };

export interface MetadataPatch {
  mtimeMs?: number;
  atimeMs?: number;
  noWrite?: boolean;
  executable?: boolean;
}

export class WriteHandle implements OverlayItem {
  readonly kind = 'write' as const;
  #state: State;
  #size: number;
  /** Content differs from what is linked under the name (or nothing is). */
  #dirty: boolean;
  #patch: MetadataPatch = {};
  readonly #openedExecutable: boolean;
  readonly #nameLock: NameLock | undefined;
  #lastWriteMs = Date.now();
  /** Set when the name was removed or replaced while open: CLOSE then commits nothing. */
  orphaned = false;

  constructor(
    private readonly deps: WriteHandleDeps,
    public target: WriteTarget,
    init: {
      base?: FileCap | undefined;
      baseSize?: number | undefined;
      append: boolean;
      readable: boolean;
      /** The name's entry was executable when opened (what stat shows until CLOSE; CLOSE keeps what is there then). */
      executable?: boolean | undefined;
      /** Given to handles other sessions can see (none: the handle is private to one operation). */
      nameLock?: NameLock | undefined;
    },
  ) {
    this.#openedExecutable = init.executable === true;
    this.#nameLock = init.nameLock;
    this.append = init.append;
    this.readable = init.readable;
    if (init.base !== undefined) {
      this.#state = { kind: 'clean', base: init.base };
      this.#size = init.baseSize ?? 0;
      this.#dirty = false;
    } else {
      this.#state = { kind: 'fresh' };
      this.#size = 0;
      this.#dirty = true;
    }
  }

  readonly append: boolean;
  readonly readable: boolean;

  get size(): number {
    return this.#size;
  }
  get mtimeMs(): number {
    return this.#patch.mtimeMs ?? this.#lastWriteMs;
  }
  get executable(): boolean {
    return this.#patch.executable ?? this.#openedExecutable;
  }

  get atimeMs(): number | undefined {
    return this.#patch.atimeMs;
  }
  /** Where the content lives now (fresh, stream, clean, spool, broken): for logs and tests. */
  get mode(): State['kind'] {
    return this.#state.kind;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#usable();
    if (this.append) offset = this.#size;
    if (data.length === 0) return;
    this.#checkSize(offset + data.length);
    const s = this.#state;
    if (s.kind === 'fresh' && offset === 0) {
      const writer = this.deps.tree.createFileWriter(this.deps.convergence);
      this.#state = { kind: 'stream', writer };
      await this.#streamWrite(writer, data);
    } else if (s.kind === 'stream' && offset === this.#size) {
      await this.#streamWrite(s.writer, data);
    } else if (s.kind === 'clean' && offset === this.#size) {
      const writer = await this.#pipeBaseIntoWriter(s);
      await this.#streamWrite(writer, data);
    } else {
      const spool = await this.#toSpool();
      if (offset > spool.size) await spool.truncate(offset);
      await spool.write(offset, data);
      this.#size = Math.max(this.#size, offset + data.length);
    }
    this.#touched();
  }

  /** Whether `relink` may replace the content: nothing is written yet and nothing old is kept. */
  get canRelink(): boolean {
    const kind = this.#state.kind;
    return this.#size === 0 && (kind === 'fresh' || kind === 'clean');
  }

  /**
   * Makes the content exactly the immutable file `cap` (copy-data of a whole
   * file into an empty handle): no byte is read or written, so CLOSE links
   * that same cap whatever its size. Later writes treat it as the base, as
   * for a file opened without TRUNC.
   */
  async relink(cap: FileCap, size: number): Promise<void> {
    this.#usable();
    if (!this.canRelink) throw new SftpStatusError(STATUS.FAILURE, 'the handle already holds data');
    await this.#release();
    this.#state = { kind: 'clean', base: cap };
    this.#size = size;
    this.#touched();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.#usable();
    if (offset >= this.#size || length === 0) return new Uint8Array(0);
    const s = this.#state;
    if (s.kind === 'clean') return (await this.#baseReader(s)).read(offset, length);
    const spool = await this.#toSpool();
    return spool.read(offset, Math.min(length, this.#size - offset));
  }

  async truncate(size: number): Promise<void> {
    this.#usable();
    if (size === this.#size) return;
    this.#checkSize(size);
    if (size === 0) {
      await this.#release();
      this.#state = { kind: 'fresh' };
    } else {
      const spool = await this.#toSpool();
      await spool.truncate(size);
    }
    this.#size = size;
    this.#touched();
  }

  setTimes(atimeMs: number, mtimeMs: number): void {
    this.#patch.atimeMs = atimeMs;
    this.#patch.mtimeMs = mtimeMs;
  }

  setNoWrite(noWrite: boolean): void {
    this.#patch.noWrite = noWrite;
  }

  setExecutable(executable: boolean): void {
    this.#patch.executable = executable;
  }

  /** Whether CLOSE would link a new version (or change metadata). */
  get needsCommit(): boolean {
    return !this.orphaned && (this.#dirty || Object.keys(this.#patch).length > 0);
  }

  /**
   * Makes the current content the file under the target name (overwriting),
   * or applies pending metadata when the content did not change. On failure
   * nothing is linked: the previous version stays exactly as it was.
   * Returns true if a new file version was linked.
   *
   * Under the name lock, the target is read once the lock is held: a
   * rename that moved the upload while the commit waited is followed, and
   * an upload orphaned meanwhile (its name removed) commits nothing.
   */
  async commit(beforeLink?: LinkOptions['beforeLink']): Promise<boolean> {
    const lock = this.#nameLock;
    if (lock === undefined) return this.#commitTo(this.target, beforeLink);
    for (;;) {
      const target = this.target;
      const outcome = await lock(target, async () =>
        this.target === target ? { linked: await this.#commitTo(target, beforeLink) } : undefined,
      );
      if (outcome !== undefined) return outcome.linked;
    }
  }

  async #commitTo(target: WriteTarget, beforeLink: LinkOptions['beforeLink']): Promise<boolean> {
    if (!this.needsCommit) return false;
    this.#usable();
    const { dir, name, where } = target;
    if (!this.#dirty) {
      await dir.setMetadata(name, { ...this.#patch });
      this.#patch = {};
      return false;
    }
    // A full event outbox refuses the upload before anything is linked (docs/spec/events.md).
    this.deps.events?.admit();
    const result = await this.#finishUpload();
    const now = Date.now();
    const metadata: EntryMetadata = {
      size: result.size,
      mtimeMs: this.#patch.mtimeMs ?? now,
      ctimeMs: now,
      noWrite: this.#patch.noWrite ?? false,
      executable: this.#patch.executable ?? false,
    };
    if (this.#patch.atimeMs !== undefined) metadata.atimeMs = this.#patch.atimeMs;
    // After the slot CAS, before CLOSE is answered: an acknowledged upload always has its event on disk,
    // and an intent written before the CAS covers a crash in between (docs/spec/events.md).
    const recorder = this.deps.user !== undefined && where !== undefined ? this.deps.events : undefined;
    const input: ChangeInput = {
      user: this.deps.user ?? '',
      operation: 'upload',
      base: where?.base ?? 'root',
      path: where?.path ?? '',
      size: result.size,
      mtimeMs: metadata.mtimeMs,
      checksums: result.checksums,
    };
    const finished = this.#state;
    await recordAround(recorder, input, async (begin) => {
      await begin([holds(dir, name, result.cap, metadata.ctimeMs)]);
      // Overwriting links over whatever holds the name, never over a directory (one made there while
      // this upload ran included): the check is inside the atomic update that links.
      await dir.link(name, result.cap, metadata, {
        overwrite: true,
        // Unless chmod said otherwise, a new version keeps the mode of the one it replaces.
        keepExecutable: this.#patch.executable === undefined,
        replacing: (existing) => {
          if (existing.cap.isDirectory) throw new IsADirectoryError('is a directory');
        },
        beforeLink,
      });
      this.#state = { kind: 'clean', base: result.cap };
      this.#dirty = false;
      this.#patch = {};
      // The content is committed: free what held it (a spool file; a finished writer needs nothing).
      if (finished.kind === 'spool') {
        await finished.spool.close();
        finished.base?.close?.();
      }
    });
    return true;
  }

  /** Drops everything not committed and frees spool space. Never throws. */
  async abandon(): Promise<void> {
    try {
      await this.#release();
    } catch {
      // the spool's file may already be gone; nothing else to free
    }
    this.#state = { kind: 'broken' };
  }

  #usable(): void {
    if (this.#state.kind === 'broken') throw new BrokenHandleError();
  }

  /** Refuses, before anything is written, a size no file can have (rather than at CLOSE, after spooling up to it). */
  #checkSize(size: number): void {
    const max = this.deps.tree.maxFileSize;
    if (size > max) throw new SftpStatusError(STATUS.FAILURE, `file too large: a file holds at most ${max} bytes`);
  }

  #touched(): void {
    this.#dirty = true;
    this.#lastWriteMs = Date.now();
    // A write after fsetstat(mtime) makes the file newer than that time, as in POSIX.
    delete this.#patch.mtimeMs;
  }

  async #streamWrite(writer: FileWriter, data: Uint8Array): Promise<void> {
    try {
      await writer.write(data);
    } catch (err) {
      writer.abort();
      this.#state = { kind: 'broken' };
      throw err;
    }
    this.#size += data.length;
  }

  async #baseReader(s: Extract<State, { kind: 'clean' }>): Promise<FileReader> {
    return (s.reader ??= await this.deps.tree.openFile(s.base));
  }

  async #pipeBaseIntoWriter(s: Extract<State, { kind: 'clean' }>): Promise<FileWriter> {
    const reader = await this.#baseReader(s);
    const writer = this.deps.tree.createFileWriter(this.deps.convergence);
    try {
      for await (const chunk of reader.stream()) await writer.write(chunk);
    } catch (err) {
      writer.abort();
      throw err;
    }
    this.#state = { kind: 'stream', writer };
    return writer;
  }

  async #toSpool(): Promise<Spool> {
    const s = this.#state;
    if (s.kind === 'spool') return s.spool;
    // The spool starts from what the handle holds, read only where it is not
    // overwritten (spool.ts): nothing is copied here, whatever the size.
    let base: FileReader | undefined;
    if (s.kind === 'stream') {
      // The bytes so far are only in the writer: finish it, and they are a file to start from.
      this.#state = { kind: 'broken' };
      base = await this.deps.tree.openFile((await s.writer.finish()).cap);
    } else if (s.kind === 'clean') {
      base = await this.#baseReader(s);
    }
    const spool = await this.deps.createSpool(base);
    // A createSpool that dropped its base would commit zeros in place of the file.
    if (spool.size !== (base?.size ?? 0)) {
      await spool.close();
      throw new Error('the spool did not start from its base');
    }
    this.#state = { kind: 'spool', spool, base };
    return spool;
  }

  async #finishUpload(): Promise<UploadResult> {
    const s = this.#state;
    // Dirty and clean: the content is a relinked file (see relink); its manifest already has the checksums.
    if (s.kind === 'clean') return { cap: s.base, size: this.#size, checksums: await (await this.#baseReader(s)).checksums() };
    if (s.kind === 'stream') {
      this.#state = { kind: 'broken' };
      try {
        return await s.writer.finish();
      } catch (err) {
        s.writer.abort();
        throw err;
      }
    }
    const writer = this.deps.tree.createFileWriter(this.deps.convergence);
    try {
      if (s.kind === 'spool') for await (const chunk of s.spool.stream()) await writer.write(chunk);
      return await writer.finish();
    } catch (err) {
      writer.abort();
      throw err;
    }
  }

  async #release(): Promise<void> {
    const s = this.#state;
    this.#state = { kind: 'fresh' };
    if (s.kind === 'stream') s.writer.abort();
    else if (s.kind === 'spool') {
      await s.spool.close();
      s.base?.close?.();
    } else if (s.kind === 'clean') s.reader?.close?.();
  }
}

/** A handle whose upload failed part-way (a store error mid-stream); only CLOSE is left. */
export class BrokenHandleError extends SftpStatusError {
  constructor() {
    super(STATUS.FAILURE, 'the upload through this handle failed; close it');
    this.name = 'BrokenHandleError';
  }
}
