import { isUtf8 } from 'node:buffer';
import type { Logger } from '../../log.js';
import { LIMITS, OPEN_FLAGS, STATUS } from '../protocol/constants.js';
import type { SftpByteStream } from '../protocol/transport.js';
import type { WireAttrs } from '../protocol/wire.js';
import { ChannelReader, type ReadableChannel, ScpProtocolError } from './channel-reader.js';
import type { ScpCommand } from './command.js';
import { expandWord, GlobLimitError } from './glob.js';
import { LocalSftp, type ReadData, SftpReplyError } from './local-sftp.js';

/** The exec channel legacy scp runs on (ssh2's ServerChannel is one). */
export interface ScpChannel extends ReadableChannel {
  write(data: Buffer | string, taken?: (err?: Error | null) => void): boolean;
  once(event: 'drain' | 'end' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  exit(code: number): unknown;
  end(): unknown;
}

export interface ScpDeps {
  user: string;
  /** The largest file the tree stores (Tree.maxFileSize): a larger one is refused before its bytes come. */
  maxFileSize: number;
  logger: Logger;
  /**
   * Serves an SFTP session on `stream` as for an `sftp` channel (the
   * connection's bounds and bookkeeping); resolves once that session has
   * closed. Undefined when no session may start now.
   */
  startSession(stream: SftpByteStream): Promise<void> | undefined;
}

/** Directories `scp -r` descends at most, as OpenSSH's sftp-client (a symbolic link loop ends there). */
export const MAX_DEPTH = 64;
/** Bytes of one WRITE the sink sends, and how many it has unanswered at once. */
const WRITE_BYTES = 128 * 1024;
const WRITES_IN_FLIGHT = 8;
/** READs the source has unanswered at once, each of the most a session serves. */
const READS_IN_FLIGHT = 8;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
/** OpenSSH's scp: the mode bits a C or D record carries. */
const MODE_BITS = 0o7777;
/** What a new file or directory gets without -p, as under sshd's usual umask 022. */
const UMASK = 0o022;

/** The transfer cannot go on (a protocol error, a fatal message from the peer, the connection gone). */
class ScpFatal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScpFatal';
  }
}

/**
 * The server end of legacy scp (`scp -O`, and OpenSSH's scp before 9.0,
 * RHEL 8's and Ubuntu 20.04's included), for clients that can speak nothing
 * else. The protocol is OpenSSH's scp.c `sink()` and `source()`: records `C`
 * (a file), `D`/`E` (enter and leave a directory), `T` (times, with -p),
 * each answered with one byte, 0 or 1 and a message line.
 *
 * No shell and no scp binary run: the command is parsed (command.ts), its
 * globs expanded (glob.ts), and every file operation is a request to an
 * SFTP session of this connection (LocalSftp), so legacy scp gets exactly
 * what SFTP gets: read-only and append-only roots, quotas, events, uploads
 * committed at close, and the connection's bounds.
 *
 * Semantics where capstan decides:
 * - a file is acknowledged (the 0 after its bytes) only once it is
 *   committed; an upload that fails (a WRITE refused, the source reporting
 *   an error in place of its final 0, the close failing) is abandoned, so
 *   the previous version stays, and reported as `scp: PATH: REASON`;
 * - `-r` follows symbolic links, as OpenSSH's scp does, to MAX_DEPTH.
 */
export class ScpServer {
  readonly #channel: ScpChannel;
  readonly #reader: ChannelReader;
  readonly #deps: ScpDeps;
  readonly #command: ScpCommand;
  #sftp: LocalSftp | undefined;
  #sessionClosed: Promise<void> | undefined;
  #errors = 0;
  #files = 0;
  #closed = false;

  constructor(channel: ScpChannel, command: ScpCommand, deps: ScpDeps) {
    this.#channel = channel;
    this.#command = command;
    this.#deps = deps;
    this.#reader = new ChannelReader(channel);
    channel.once('close', () => {
      this.#closed = true;
      this.#sftp?.destroy();
    });
    // A stream error (a write the channel refuses) ends this transfer, never the gateway.
    channel.on('error', (err) => {
      this.#deps.logger.debug({ event: 'scp_channel_error', err: err.message }, 'scp channel error');
      this.#closed = true;
      this.#sftp?.destroy();
    });
  }

  /** Runs the transfer to its end and closes the channel with scp's exit status. */
  async run(): Promise<void> {
    let code = 0;
    try {
      await this.#session();
      if (this.#command.direction === 'to') await this.#sink();
      else await this.#source();
      code = this.#errors > 0 ? 1 : 0;
    } catch (err) {
      code = 1;
      if (err instanceof ScpFatal || err instanceof ScpProtocolError) this.#tell(err.message);
      else if (err instanceof SftpReplyError || err instanceof GlobLimitError) this.#tell(reasonOf(err));
      else {
        this.#deps.logger.error({ event: 'scp_failed', err }, 'scp failed');
        this.#tell('internal error');
      }
    }
    this.#sftp?.end();
    await this.#sessionClosed;
    this.#deps.logger.info(
      { event: 'scp', direction: this.#command.direction, files: this.#files, errors: this.#errors, code },
      'legacy scp finished',
    );
    if (this.#closed) return;
    this.#channel.exit(code);
    this.#channel.end();
  }

  /** A fresh SFTP session; the previous one, if any, is abandoned with whatever upload it had open. */
  async #session(): Promise<void> {
    if (this.#sftp !== undefined) {
      this.#sftp.destroy();
      await this.#sessionClosed;
    }
    if (this.#closed) throw new ScpFatal('lost connection');
    const sftp = new LocalSftp();
    const closed = this.#deps.startSession(sftp.stream);
    if (closed === undefined) throw new ScpFatal('server busy: too many sessions on this connection');
    this.#sftp = sftp;
    this.#sessionClosed = closed;
    await sftp.init();
  }

  get #client(): LocalSftp {
    if (this.#sftp === undefined) throw new ScpFatal('no session');
    return this.#sftp;
  }

  // ---- sink: the client sends (-t) ----

  async #sink(): Promise<void> {
    const targets = await this.#expand(this.#command.paths);
    const [target] = targets;
    if (target === undefined || targets.length > 1) throw new ScpFatal('ambiguous target');
    const top = await this.#statOrUndefined(target);
    const topIsDir = top !== undefined && isDirectory(top);
    if (this.#command.targetIsDirectory && !topIsDir) throw new ScpFatal(`${target}: Not a directory`);
    /** Directories entered with D, innermost last, and what to apply to each when its E comes. */
    const stack: { path: string; mode: number; times: Times | undefined }[] = [];
    let times: Times | undefined;
    this.#ack();
    for (let first = true; ; first = false) {
      const kind = await this.#reader.byte();
      if (kind === undefined) return;
      if (kind === 1 || kind === 2) {
        const message = await this.#reader.line();
        this.#errors++;
        if (kind === 2) throw new ScpFatal(message.replace(/^scp: /, ''));
        continue;
      }
      const bytes = await this.#reader.lineBytes();
      const line = bytes.toString('utf8');
      const record = String.fromCharCode(kind);
      if (record === 'E') {
        const dir = stack.pop();
        if (dir === undefined) {
          this.#ack();
          return;
        }
        await this.#finishDirectory(dir);
        this.#ack();
        continue;
      }
      if (record === 'T') {
        times = parseTimes(line);
        this.#ack();
        continue;
      }
      if (record !== 'C' && record !== 'D') throw new ScpFatal(first ? `${record}${line}` : 'protocol error: expected control record');
      const { mode, size, name } = parseFileRecord(line, record);
      if (!isUtf8(bytes)) {
        // capstan names are UTF-8, kept byte for byte: another encoding is refused, never mangled into U+FFFD.
        this.#reportError(name, 'file name is not UTF-8');
        continue;
      }
      const parent = stack.at(-1)?.path;
      const path = parent !== undefined ? join(parent, name) : topIsDir ? join(target, name) : target;
      const recordTimes = times;
      times = undefined;
      if (record === 'D') {
        if (!this.#command.recursive) throw new ScpFatal('protocol error: received directory without -r');
        if (!(await this.#enterDirectory(path, mode))) continue;
        stack.push({ path, mode, times: recordTimes });
        this.#ack();
        continue;
      }
      await this.#receiveFile(path, mode, size, recordTimes);
    }
  }

  /** The directory `path` for a D record, made if missing; false, reported, if it cannot be. */
  async #enterDirectory(path: string, mode: number): Promise<boolean> {
    try {
      const found = await this.#statOrUndefined(path);
      if (found === undefined) await this.#client.mkdir(path, { mode: (mode | 0o700) & ~UMASK });
      else if (!isDirectory(found)) throw new SftpReplyError(STATUS.NO_SUCH_FILE, 'not a directory');
      return true;
    } catch (err) {
      this.#reportError(path, err);
      return false;
    }
  }

  /**
   * At a directory's E, with -p: its mode and times, applied last as
   * OpenSSH's sink does (a mode without write bits makes it read-only, which
   * would have refused the files sent into it).
   */
  async #finishDirectory(dir: { path: string; mode: number; times: Times | undefined }): Promise<void> {
    if (!this.#command.preserve) return;
    const attrs: WireAttrs = { mode: dir.mode, ...dir.times };
    try {
      await this.#client.setstat(dir.path, attrs);
    } catch {
      // OpenSSH's sink ignores a failed utimes or chmod of a directory too
    }
  }

  /** One C record: the file's bytes into an upload, committed before it is acknowledged. */
  async #receiveFile(path: string, mode: number, size: number, times: Times | undefined): Promise<void> {
    if (size > this.#deps.maxFileSize) {
      this.#reportError(path, new SftpReplyError(STATUS.FAILURE, 'file too large'));
      return;
    }
    let handle: Buffer;
    try {
      const createMode = this.#command.preserve ? mode : mode & ~UMASK;
      handle = await this.#client.open(path, OPEN_FLAGS.WRITE | OPEN_FLAGS.CREAT | OPEN_FLAGS.TRUNC, { mode: createMode });
    } catch (err) {
      this.#reportError(path, err);
      return;
    }
    this.#ack();
    let failure: unknown;
    const writes: Promise<void>[] = [];
    const client = this.#client;
    for (let offset = 0; offset < size; ) {
      const length = Math.min(WRITE_BYTES, size - offset);
      // After a failure the rest is still read, and dropped, so the stream stays in step with the records.
      const target = failure === undefined ? client.writePacket(handle, offset, length) : undefined;
      for (let filled = 0; filled < length; ) {
        const piece = await this.#reader.piece(length - filled);
        if (piece === undefined) throw new ScpFatal('lost connection');
        if (target !== undefined) piece.copy(target.packet, target.dataAt + filled);
        filled += piece.length;
      }
      offset += length;
      if (target === undefined) continue;
      const { packet } = target;
      writes.push(
        client.write(packet).catch((err: unknown) => {
          failure ??= err;
        }),
      );
      if (writes.length >= WRITES_IN_FLIGHT) await writes.shift();
    }
    await Promise.all(writes);
    const status = await this.#reader.byte();
    if (status === undefined) throw new ScpFatal('lost connection');
    if (status !== 0) {
      // The source could not read its file and sent an error in place of its final 0: the bytes are not the file's.
      const message = await this.#reader.line();
      if (status === 2) throw new ScpFatal(message.replace(/^scp: /, ''));
      this.#errors++;
      await this.#session();
      this.#ack();
      return;
    }
    if (failure === undefined) {
      try {
        if (this.#command.preserve) await client.fsetstat(handle, { mode, ...times });
        else if (times !== undefined) await client.fsetstat(handle, times);
        await client.close(handle);
      } catch (err) {
        failure = err;
      }
    }
    if (failure !== undefined) {
      this.#reportError(path, failure);
      await this.#session();
      return;
    }
    this.#files++;
    this.#ack();
  }

  // ---- source: the client receives (-f) ----

  async #source(): Promise<void> {
    await this.#response(); // the sink's first 0: it is ready
    for (const word of this.#command.paths) {
      let paths: string[];
      try {
        paths = await this.#expand([word]);
      } catch (err) {
        this.#reportError(word.text, err);
        continue;
      }
      for (const path of paths) await this.#send(path.length > 1 ? path.replace(/\/+$/, '') || '/' : path, 0);
    }
  }

  async #send(path: string, depth: number): Promise<void> {
    let attrs: WireAttrs;
    try {
      attrs = await this.#client.stat(path);
    } catch (err) {
      this.#reportError(path, err);
      return;
    }
    if (isDirectory(attrs) && this.#command.recursive) return this.#sendDirectory(path, attrs, depth);
    if (((attrs.mode ?? 0) & S_IFMT) !== S_IFREG) return this.#reportError(path, 'not a regular file');
    const name = basename(path);
    if (name.includes('\n')) return this.#reportError(path, 'a name with a newline cannot be sent by scp');
    await this.#withHandle(
      path,
      () => this.#client.open(path, OPEN_FLAGS.READ),
      async (handle) => {
        const opened = await this.#client.fstat(handle);
        if (this.#command.preserve && !(await this.#sendTimes(opened))) return;
        const size = opened.size ?? 0;
        this.#write(`C${octal(opened.mode)} ${size} ${name}\n`);
        if (!(await this.#response())) return;
        const failure = await this.#sendBytes(handle, size);
        if (failure === undefined) {
          this.#ack();
          this.#files++;
        } else this.#reportError(path, failure);
        await this.#response();
      },
    );
  }

  /** The file's `size` bytes, READs pipelined; after a failure zeros, to keep the stream in step. The failure, if any. */
  async #sendBytes(handle: Buffer, size: number): Promise<unknown> {
    const client = this.#client;
    const reads: Promise<ReadData | undefined>[] = [];
    let asked = 0;
    let failure: unknown;
    for (let sent = 0; sent < size; ) {
      while (failure === undefined && reads.length < READS_IN_FLIGHT && asked < size) {
        const length = Math.min(LIMITS.maxReadLength, size - asked);
        reads.push(client.read(handle, asked, length));
        asked += length;
      }
      let data: ReadData | undefined;
      try {
        data = failure === undefined ? await reads.shift() : undefined;
        if (data === undefined && failure === undefined) failure = 'file changed size';
      } catch (err) {
        failure ??= err;
      }
      const piece = (data?.bytes ?? Buffer.alloc(Math.min(LIMITS.maxReadLength, size - sent))).subarray(0, size - sent);
      sent += piece.length;
      // The read's memory goes back to the session once ssh2 has taken the bytes into its SSH packets.
      if (!this.#write(piece, data?.release)) await this.#drain();
    }
    // Reads asked before a failure: their memory goes back unused.
    for (const settled of await Promise.allSettled(reads)) if (settled.status === 'fulfilled') settled.value?.release();
    return failure;
  }

  async #sendDirectory(path: string, attrs: WireAttrs, depth: number): Promise<void> {
    if (depth >= MAX_DEPTH) return this.#reportError(path, 'maximum directory depth exceeded');
    await this.#withHandle(
      path,
      () => this.#client.opendir(path),
      async (handle) => {
        if (this.#command.preserve && !(await this.#sendTimes(attrs))) return;
        this.#write(`D${octal(attrs.mode)} 0 ${basename(path)}\n`);
        if (!(await this.#response())) return;
        let failure: unknown;
        try {
          for (let names = await this.#client.readdir(handle); names.length > 0; names = await this.#client.readdir(handle)) {
            for (const { filename } of names) if (filename !== '.' && filename !== '..') await this.#send(join(path, filename), depth + 1);
          }
        } catch (err) {
          if (!(err instanceof SftpReplyError)) throw err;
          failure = err; // the listing broke off: the directory is still left, or the sink would stay in it
        }
        this.#write('E\n');
        await this.#response();
        if (failure !== undefined) this.#reportError(path, failure);
      },
    );
  }

  /**
   * Opens a handle with `open` (a failure is reported against `path`, and
   * the transfer goes on), runs `body` with it, and closes it. A failed
   * SFTP request in `body` is reported the same way; anything else ends the
   * transfer.
   */
  async #withHandle(path: string, open: () => Promise<Buffer>, body: (handle: Buffer) => Promise<void>): Promise<void> {
    let handle: Buffer;
    try {
      handle = await open();
    } catch (err) {
      this.#reportError(path, err);
      return;
    }
    try {
      await body(handle);
    } catch (err) {
      if (!(err instanceof SftpReplyError)) throw err;
      this.#reportError(path, err);
    } finally {
      await this.#client.close(handle).catch(() => {});
    }
  }

  /** A T record (-p); false if the sink refused it. */
  async #sendTimes(attrs: WireAttrs): Promise<boolean> {
    this.#write(`T${attrs.mtime ?? 0} 0 ${attrs.atime ?? attrs.mtime ?? 0} 0\n`);
    return this.#response();
  }

  // ---- both ----

  /** The peer's answer to a record: true for 0; false for 1 and its message (counted); fatal for 2 or anything else. */
  async #response(): Promise<boolean> {
    const answer = await this.#reader.byte();
    if (answer === undefined) throw new ScpFatal('lost connection');
    if (answer === 0) return true;
    const line = await this.#reader.line();
    if (answer === 1) {
      this.#errors++;
      return false;
    }
    throw new ScpFatal(answer === 2 ? line.replace(/^scp: /, '') : 'protocol error: unexpected answer');
  }

  /** Each word's paths, as a shell would have expanded them. */
  async #expand(words: ScpCommand['paths']): Promise<string[]> {
    const out: string[] = [];
    for (const word of words) {
      const paths = await expandWord(word, { user: this.#deps.user, list: (dir) => this.#names(dir) });
      out.push(...paths);
    }
    return out;
  }

  async #names(dir: string): Promise<string[]> {
    const client = this.#client;
    let handle: Buffer;
    try {
      handle = await client.opendir(dir);
    } catch {
      return [];
    }
    const names: string[] = [];
    try {
      for (let batch = await client.readdir(handle); batch.length > 0; batch = await client.readdir(handle))
        for (const { filename } of batch) if (filename !== '.' && filename !== '..') names.push(filename);
    } finally {
      await client.close(handle).catch(() => {});
    }
    return names;
  }

  async #statOrUndefined(path: string): Promise<WireAttrs | undefined> {
    try {
      return await this.#client.stat(path);
    } catch (err) {
      if (err instanceof SftpReplyError && err.status === STATUS.NO_SUCH_FILE) return undefined;
      throw err;
    }
  }

  /** `scp: PATH: REASON` to the peer, in the stream (OpenSSH's run_err), and counted for the exit status. */
  #reportError(path: string, err: unknown): void {
    this.#errors++;
    this.#tell(`${path}: ${reasonOf(err)}`);
  }

  #tell(message: string): void {
    if (!this.#closed) this.#write(`\x01scp: ${message.replace(/\n/g, ' ')}\n`);
  }

  #ack(): void {
    this.#write(Buffer.of(0));
  }

  /** Writes to the channel; `taken` runs once ssh2 no longer needs `data` (or the channel is gone). */
  #write(data: Buffer | string, taken?: () => void): boolean {
    if (this.#closed) {
      taken?.();
      throw new ScpFatal('lost connection');
    }
    return taken === undefined ? this.#channel.write(data) : this.#channel.write(data, () => taken());
  }

  /** Resolves once the channel took what was written (the client's SSH window opened), or closed. */
  #drain(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#channel.off('drain', done);
        this.#channel.off('close', done);
        resolve();
      };
      this.#channel.once('drain', done);
      this.#channel.once('close', done);
    });
  }
}

type Times = { atime: number; mtime: number };

const isDirectory = (attrs: WireAttrs): boolean => ((attrs.mode ?? 0) & S_IFMT) === S_IFDIR;

const octal = (mode: number | undefined): string => ((mode ?? 0o644) & MODE_BITS).toString(8).padStart(4, '0');

function join(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `T<mtime> <usec> <atime> <usec>`, seconds as whole numbers (OpenSSH's sink checks the same). */
function parseTimes(line: string): Times {
  const m = /^(\d{1,20}) (\d{1,6}) (\d{1,20}) (\d{1,6})$/.exec(line);
  if (m === null) throw new ScpFatal('protocol error: bad times record');
  const mtime = Number(m[1]);
  const atime = Number(m[3]);
  // SFTP v3 times are 32-bit: a time outside is not one this server can keep.
  if (mtime > 0xffffffff || atime > 0xffffffff) throw new ScpFatal('protocol error: time out of range');
  return { atime, mtime };
}

/** `C0644 SIZE NAME` or `D0755 0 NAME` (after the letter): a name must be one component, not `.` or `..`. */
function parseFileRecord(line: string, record: 'C' | 'D'): { mode: number; size: number; name: string } {
  const m = /^([0-7]{4}) (\d{1,20}) (.*)$/s.exec(line);
  if (m === null) throw new ScpFatal(`protocol error: bad ${record} record`);
  const [, modeText = '', sizeText = '', name = ''] = m;
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw new ScpFatal('protocol error: size out of range');
  if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new ScpFatal(`error: unexpected filename: ${name}`);
  return { mode: Number.parseInt(modeText, 8), size, name };
}

/** strerror-like text for what an operation threw (the session's own messages: never a cap). */
function reasonOf(err: unknown): string {
  if (typeof err === 'string') return err;
  if (err instanceof GlobLimitError) return 'too many names match';
  if (err instanceof SftpReplyError) {
    switch (err.status) {
      case STATUS.NO_SUCH_FILE:
        return err.message === 'not a directory' ? 'Not a directory' : 'No such file or directory';
      case STATUS.PERMISSION_DENIED:
        return 'Permission denied';
      default: {
        const text = err.message === '' ? 'Failure' : err.message;
        return text.charAt(0).toUpperCase() + text.slice(1);
      }
    }
  }
  throw err;
}
