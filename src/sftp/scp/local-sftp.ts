import { EventEmitter } from 'node:events';
import { PACKET, SFTP_VERSION, STATUS, type StatusCode } from '../protocol/constants.js';
import { PacketFramer } from '../protocol/framer.js';
import { packetBuffers } from '../protocol/packet-buffers.js';
import type { SftpByteStream } from '../protocol/transport.js';
import { PacketBuilder, type WireAttrs, WireReader } from '../protocol/wire.js';

/** An SFTP status other than OK, as the session answered it. */
export class SftpReplyError extends Error {
  constructor(
    readonly status: StatusCode,
    message: string,
  ) {
    super(message);
    this.name = 'SftpReplyError';
  }
}

export interface NameItem {
  filename: string;
  attrs: WireAttrs;
}

/** `release` gives the reply's memory back to the session (only a DATA reply holds it; see onReply). */
type Reply = { type: number; payload: Buffer; release: () => void };

/** Bytes a read got, and the call that gives their memory back to the session once they are used (exactly once). */
export interface ReadData {
  bytes: Buffer;
  release(): void;
}

const nothingHeld = (): void => {};

/** Bytes of a WRITE packet before its data: length, type, id, handle (string), offset, data length. */
const writeHeaderBytes = (handle: Buffer): number => 4 + 1 + 4 + 4 + handle.length + 8 + 4;

/**
 * The gateway's own SFTP client: requests go to an SftpSession in this
 * process over a pair of in-memory streams, so whatever speaks another
 * protocol on top of it (legacy scp, scp.ts) gets exactly what an SFTP
 * client gets: the same checks (read-only, append-only, quotas), the same
 * uploads (overlay, events, commit at CLOSE) and the same bounds (handles,
 * queued bytes, the gateway's memory budget), from one implementation.
 *
 * `stream` is the session's side; hand it to the code that serves SFTP
 * channels. Replies come back in request order (the transport's rule), so
 * each answers the oldest request waiting. Each reply is copied once as it
 * arrives: the session reuses the memory it wrote from.
 */
export class LocalSftp {
  readonly stream: SftpByteStream;
  readonly #session = new SessionSide();
  readonly #framer = new PacketFramer();
  readonly #waiting: ((reply: Reply | undefined) => void)[] = [];
  #nextId = 0;
  #ended = false;

  constructor() {
    this.stream = this.#session;
    this.#session.onReply = (bytes, done) => {
      // The transport writes whole packets and reuses their memory once `done` runs. A DATA reply written
      // alone (a download's) is handed on as a view, and `done` waits for its reader's release; any other
      // reply is copied and `done` runs now.
      const frames = this.#framer.push(bytes);
      const [only] = frames;
      if (frames.length === 1 && only?.type === PACKET.DATA && this.#framer.buffered === 0 && this.#waiting.length > 0) {
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          done();
        };
        this.#waiting.shift()?.({ type: only.type, payload: only.payload, release });
        return;
      }
      for (const frame of frames) this.#waiting.shift()?.({ type: frame.type, payload: Buffer.from(frame.payload), release: nothingHeld });
      done();
    };
    this.#session.onEnd = () => this.#fail();
  }

  /** Starts the session: INIT, and its VERSION. */
  async init(): Promise<void> {
    const reply = await this.#send(new PacketBuilder(PACKET.INIT).u32(SFTP_VERSION).build());
    if (reply.type !== PACKET.VERSION) throw new SftpReplyError(STATUS.BAD_MESSAGE, 'unexpected reply to INIT');
  }

  async open(path: string, pflags: number, attrs: WireAttrs = {}): Promise<Buffer> {
    const r = await this.#request(PACKET.OPEN, (b) => b.string(path).u32(pflags).attrs(attrs));
    return this.#handle(r);
  }

  async opendir(path: string): Promise<Buffer> {
    return this.#handle(await this.#request(PACKET.OPENDIR, (b) => b.string(path)));
  }

  /** The next names of a directory handle; empty at its end. */
  async readdir(handle: Buffer): Promise<NameItem[]> {
    const r = await this.#request(PACKET.READDIR, (b) => b.string(handle), true);
    if (r === undefined) return [];
    const reader = this.#expect(r, PACKET.NAME);
    const items: NameItem[] = [];
    for (let n = reader.u32(); n > 0; n--) {
      const filename = reader.text();
      reader.bytes(); // longname
      const attrs = reader.attrs();
      if (filename !== null) items.push({ filename, attrs });
    }
    return items;
  }

  /**
   * Up to `length` bytes at `offset`, in the session's reply memory (no
   * copy): the caller MUST release them once used, or the session's
   * replies stop; undefined at the end of the file.
   */
  async read(handle: Buffer, offset: number, length: number): Promise<ReadData | undefined> {
    const r = await this.#request(PACKET.READ, (b) => b.string(handle).u64(offset).u32(length), true);
    if (r === undefined) return undefined;
    try {
      return { bytes: this.#expect(r, PACKET.DATA).bytes(), release: r.release };
    } catch (err) {
      r.release();
      throw err;
    }
  }

  /**
   * A WRITE packet for `length` bytes at `offset`, whose data the caller
   * fills in at `dataAt` before passing it to `write` (one copy of the
   * bytes, into the packet). It is taken from the gateway's packet pool,
   * data 8-aligned, as the framer assembles a client's WRITE: the session's
   * handler gives it back once the upload took the bytes.
   */
  writePacket(handle: Buffer, offset: number, length: number): { packet: Buffer; dataAt: number } {
    const dataAt = writeHeaderBytes(handle);
    const packet = packetBuffers.take(dataAt + length, dataAt);
    let at = packet.writeUInt32BE(dataAt + length - 4, 0);
    at = packet.writeUInt8(PACKET.WRITE, at);
    at = packet.writeUInt32BE(this.#id(), at);
    at = packet.writeUInt32BE(handle.length, at);
    at += handle.copy(packet, at);
    at = packet.writeBigUInt64BE(BigInt(offset), at);
    packet.writeUInt32BE(length, at);
    return { packet, dataAt };
  }

  /** Sends a packet from writePacket; resolves when the session answered it. */
  async write(packet: Buffer): Promise<void> {
    this.#status(await this.#send(packet));
  }

  async close(handle: Buffer): Promise<void> {
    this.#status(await this.#request(PACKET.CLOSE, (b) => b.string(handle)));
  }

  async fsetstat(handle: Buffer, attrs: WireAttrs): Promise<void> {
    this.#status(await this.#request(PACKET.FSETSTAT, (b) => b.string(handle).attrs(attrs)));
  }

  async setstat(path: string, attrs: WireAttrs): Promise<void> {
    this.#status(await this.#request(PACKET.SETSTAT, (b) => b.string(path).attrs(attrs)));
  }

  async mkdir(path: string, attrs: WireAttrs): Promise<void> {
    this.#status(await this.#request(PACKET.MKDIR, (b) => b.string(path).attrs(attrs)));
  }

  async fstat(handle: Buffer): Promise<WireAttrs> {
    return this.#expect(await this.#request(PACKET.FSTAT, (b) => b.string(handle)), PACKET.ATTRS).attrs();
  }

  /** STAT: a last symbolic link is followed. */
  async stat(path: string): Promise<WireAttrs> {
    return this.#expect(await this.#request(PACKET.STAT, (b) => b.string(path)), PACKET.ATTRS).attrs();
  }

  /** The client's EOF: the session answers what it has, then ends. */
  end(): void {
    this.#session.clientEnded();
  }

  /** The session goes at once, as when an SSH channel closes: uploads not closed are abandoned. */
  destroy(): void {
    this.#fail();
    this.#session.end();
  }

  async #request(type: number, fill: (b: PacketBuilder) => void, eofIsEnd?: false): Promise<Reply>;
  async #request(type: number, fill: (b: PacketBuilder) => void, eofIsEnd: true): Promise<Reply | undefined>;
  async #request(type: number, fill: (b: PacketBuilder) => void, eofIsEnd = false): Promise<Reply | undefined> {
    const b = new PacketBuilder(type).u32(this.#id());
    fill(b);
    const reply = await this.#send(b.build());
    if (eofIsEnd && reply.type === PACKET.STATUS && new WireReader(reply.payload, 4).u32() === STATUS.EOF) return undefined; // a STATUS holds nothing
    return reply;
  }

  #id(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) >>> 0;
    return id;
  }

  #send(packet: Buffer): Promise<Reply> {
    if (this.#ended) return Promise.reject(new SftpReplyError(STATUS.CONNECTION_LOST, 'session ended'));
    return new Promise((resolve, reject) => {
      this.#waiting.push((reply) =>
        reply === undefined ? reject(new SftpReplyError(STATUS.CONNECTION_LOST, 'session ended')) : resolve(reply),
      );
      this.#session.deliver(packet);
    });
  }

  #fail(): void {
    this.#ended = true;
    for (const waiter of this.#waiting.splice(0)) waiter(undefined);
  }

  #handle(r: Reply): Buffer {
    return Buffer.from(this.#expect(r, PACKET.HANDLE).bytes());
  }

  /** A reader past the reply's id, if it is of `type`; a STATUS throws SftpReplyError. */
  #expect(r: Reply, type: number): WireReader {
    const reader = new WireReader(r.payload);
    reader.u32(); // id: replies come in request order
    if (r.type === type) return reader;
    if (r.type === PACKET.STATUS) {
      const code = reader.u32() as StatusCode;
      throw new SftpReplyError(code, reader.text() ?? '');
    }
    throw new SftpReplyError(STATUS.BAD_MESSAGE, `unexpected reply type ${r.type}`);
  }

  #status(r: Reply): void {
    const reader = new WireReader(r.payload);
    reader.u32();
    if (r.type !== PACKET.STATUS) throw new SftpReplyError(STATUS.BAD_MESSAGE, `unexpected reply type ${r.type}`);
    const code = reader.u32() as StatusCode;
    if (code !== STATUS.OK) throw new SftpReplyError(code, reader.text() ?? '');
  }
}

/** The session's end of the pair: what it writes are replies; what it reads are the client's requests. */
class SessionSide extends EventEmitter implements SftpByteStream {
  onReply: (bytes: Buffer, done: () => void) => void = (_bytes, done) => done();
  onEnd: () => void = () => {};
  /** Requests held while the session does not read (its queue bound, the gateway's memory budget); the client keeps them few. */
  #paused = false;
  readonly #queue: Buffer[] = [];
  #clientEnded = false;
  #endSent = false;
  #gone = false;

  deliver(packet: Buffer): void {
    if (this.#paused || this.#queue.length > 0) this.#queue.push(packet);
    else this.emit('data', packet);
  }

  clientEnded(): void {
    this.#clientEnded = true;
    this.#endIfDrained();
  }

  #endIfDrained(): void {
    if (!this.#clientEnded || this.#queue.length > 0 || this.#endSent) return;
    this.#endSent = true;
    this.emit('end');
  }

  write(chunk: Buffer, done: (err?: Error | null) => void): boolean {
    // `done` gives the memory back to the transport: called once the reply's bytes are used (onReply).
    this.onReply(chunk, () => done());
    return true;
  }

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    this.#paused = false;
    while (!this.#paused && this.#queue.length > 0) {
      const next = this.#queue.shift();
      if (next !== undefined) this.emit('data', next);
    }
    if (!this.#paused) this.#endIfDrained();
    return this;
  }

  /** The session ended its side: no more replies. */
  end(): this {
    if (this.#gone) return this;
    this.#gone = true;
    this.onEnd();
    this.emit('close');
    return this;
  }
}
