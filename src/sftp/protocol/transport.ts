import { LIMITS, PACKET, STATUS } from './constants.js';
import { PacketFramer } from './framer.js';
import { packetBuffers } from './packet-buffers.js';
import { statusPacket, versionPacket } from './replies.js';
import { decodeRequest, MalformedRequestError, type Request } from './requests.js';
import type { SymlinkOrder } from './symlink-order.js';
import { MalformedPacketError } from './wire.js';

/**
 * The byte stream an SFTP session runs on: ssh2's ServerChannel for the
 * `sftp` subsystem satisfies it (a Duplex whose write side honours the
 * client's SSH window, whose `exit` sends exit-status). Kept structural so
 * tests can run a session on a pair of in-memory streams.
 */
export interface SftpByteStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  /**
   * `done` runs once the connection took the bytes (ssh2: once the client's
   * window had room for them and they were copied into SSH packets). From
   * then on the stream MUST NOT use `chunk`: the transport reuses its memory.
   */
  write(chunk: Buffer, done: (err?: Error | null) => void): boolean;
  pause(): unknown;
  resume(): unknown;
  end(): unknown;
  exit?(code: number): unknown;
}

/** One request's place in the reply order; answered exactly once (a second answer is ignored). */
export interface ReplyTicket {
  send(packet: Buffer): void;
}

export interface TransportHandlers {
  /** A decoded request, with the ticket its answer goes through. Called in arrival order. */
  request(request: Request, reply: ReplyTicket): void;
  /** The client sent EOF: nothing more will arrive (what did arrive still wants answers). */
  end(): void;
  /** The stream is gone, or the session must end (a protocol violation): stop everything. */
  closed(reason: string | undefined): void;
  /** The connection took bytes of replies: `backlog` went down. */
  taken?(): void;
}

/** Replies at least this long are written on their own (SftpTransport's #write). */
export const COALESCE_BELOW = 64 * 1024;

/**
 * The SFTP packet layer of one session, owned by capstan rather than ssh2
 * (whose SFTP server cannot send extended replies or exit-status, and
 * answers in completion order).
 *
 * **Replies leave in request order**, whatever order the work finishes in,
 * as OpenSSH's sftp-server (which handles one request at a time) answers.
 * Clients rely on it: OpenSSH 9.0–9.3's scp writes READ replies to disk in
 * the order they arrive as if they were the order asked, and truncates the
 * file silently when they are not. The work itself may still run
 * concurrently (a download's pipelined READs do): a reply that is ready
 * early waits in memory for the ones before it, and the session bounds how
 * many requests run at once, so at most that many replies wait.
 *
 * Protocol rules, as OpenSSH's server applies them: the first packet must
 * be INIT (answered with VERSION 3 and our extensions); a second INIT, a
 * packet longer than 256 KiB or too short to hold a request id ends the
 * session; a request whose fields do not parse is answered BAD_MESSAGE and
 * the session goes on; an unknown type is OP_UNSUPPORTED.
 */
export class SftpTransport {
  readonly #stream: SftpByteStream;
  readonly #handlers: TransportHandlers;
  readonly #symlinkOrder: SymlinkOrder;
  readonly #framer = new PacketFramer();
  /** Replies by arrival number; `null` while that request is still running. */
  readonly #waiting = new Map<number, Buffer | null>();
  #nextArrival = 0;
  #nextToSend = 0;
  #initialized = false;
  #closed = false;
  /** Bytes written to the stream that the connection has not taken yet (the client's window is full). */
  #unsent = 0;
  /** Bytes of the replies in #waiting (answered, waiting for the ones before them). */
  #waitingBytes = 0;
  /** Small replies ready in this turn, to be written as one (#write). */
  #batch: Buffer[] = [];
  #batchBytes = 0;

  /** `symlinkOrder`: the order this client sends SYMLINK in (symlink-order.ts; default target first, as OpenSSH). */
  constructor(stream: SftpByteStream, handlers: TransportHandlers, symlinkOrder: SymlinkOrder = 'target-first') {
    this.#stream = stream;
    this.#handlers = handlers;
    this.#symlinkOrder = symlinkOrder;
    stream.on('data', (chunk) => this.#receive(chunk));
    stream.on('end', () => {
      if (!this.#closed) handlers.end();
    });
    stream.on('close', () => this.#close(undefined));
    stream.on('error', (err) => this.#close(`stream error: ${err.message}`));
  }

  /** Bytes of replies not yet taken by the connection: sent and waiting for the window, or waiting for their turn. */
  get backlog(): number {
    return this.#unsent + this.#waitingBytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Stop (true) or resume (false) reading requests; unread bytes then hold back the client's SSH window. */
  setPaused(paused: boolean): void {
    if (this.#closed) return;
    if (paused) this.#stream.pause();
    else this.#stream.resume();
  }

  /** Ends the session from our side (the session closed): nothing more is read or sent. */
  close(): void {
    this.#close(undefined);
    try {
      this.#stream.end();
    } catch {
      // already gone
    }
  }

  /**
   * Replies smaller than COALESCE_BELOW that are ready together (in one
   * turn of the event loop) go to the stream as one write.
   *
   * Why: ssh2 cuts each write into SSH packets of at most the client's
   * packet size (32 KiB for OpenSSH and most others), so the DATA reply to
   * a 32 KiB READ, 13 bytes more, was two SSH packets: a full one and one of
   * 13 bytes, each with its own padding, sealing and MAC. Clients that read
   * 32 KiB at a time (paramiko, rclone, restic, lftp, `sftp -B 32768`) paid
   * that on every READ. Written together, consecutive replies fill their
   * SSH packets. Larger replies, and a batch that reaches a packet buffer's
   * size, are written at once (order kept).
   */
  #write(packet: Buffer): void {
    this.#unsent += packet.length;
    if (packet.length >= COALESCE_BELOW) {
      this.#writeBatch();
      this.#send(packet);
      return;
    }
    // A group is at most one pooled packet buffer.
    if (this.#batchBytes + packet.length > LIMITS.maxPacketLength) this.#writeBatch();
    // A group that starts is written at the end of the turn, if nothing wrote it before.
    if (this.#batch.push(packet) === 1) process.nextTick(() => this.#writeBatch());
    this.#batchBytes += packet.length;
  }

  #writeBatch(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
    this.#batch = [];
    const bytes = this.#batchBytes;
    this.#batchBytes = 0;
    if (this.#closed) return;
    const [first] = batch;
    if (batch.length === 1 && first !== undefined) {
      this.#send(first);
      return;
    }
    const combined = packetBuffers.take(bytes);
    let at = 0;
    for (const packet of batch) {
      combined.set(packet, at);
      at += packet.length;
      packetBuffers.release(packet);
    }
    this.#send(combined);
  }

  #send(packet: Buffer): void {
    this.#stream.write(packet, (err) => {
      this.#unsent -= packet.length;
      // After an error the stream may still hold the bytes: the garbage collector takes that buffer instead.
      if (err == null) packetBuffers.release(packet);
      this.#handlers.taken?.();
    });
  }

  /**
   * Writes now the replies grouped for this turn (#write). Whoever ends the
   * channel once the last request is answered calls it first: that answer
   * may still be waiting for the turn to end.
   */
  writePending(): void {
    this.#writeBatch();
  }

  /** Ends the session as sftp-server's exit does: exit-status, then EOF and close of the channel. */
  finish(exitCode: number): void {
    if (this.#closed) return;
    this.writePending();
    try {
      this.#stream.exit?.(exitCode);
      this.#stream.end();
    } catch {
      // the connection went first; nothing left to close
    }
  }

  #receive(chunk: Buffer): void {
    if (this.#closed) return;
    let frames: ReturnType<PacketFramer['push']>;
    try {
      frames = this.#framer.push(chunk);
    } catch (err) {
      this.#violation(err);
      return;
    }
    for (const frame of frames) {
      if (this.#closed) return;
      if (!this.#initialized) {
        if (frame.type !== PACKET.INIT || frame.payload.length < 4) {
          this.#violation(new MalformedPacketError('expected INIT'));
          return;
        }
        this.#initialized = true;
        // The client's version does not matter: like OpenSSH's server we speak 3 and say so.
        this.#write(versionPacket());
        continue;
      }
      if (frame.type === PACKET.INIT) {
        this.#violation(new MalformedPacketError('a second INIT'));
        return;
      }
      let request: Request;
      try {
        request = decodeRequest(frame.type, frame.payload, this.#symlinkOrder);
      } catch (err) {
        if (err instanceof MalformedRequestError) {
          this.#ticket().send(statusPacket(err.id, STATUS.BAD_MESSAGE, 'malformed request'));
          continue;
        }
        this.#violation(err);
        return;
      }
      this.#handlers.request(request, this.#ticket());
    }
  }

  #ticket(): ReplyTicket {
    const n = this.#nextArrival++;
    this.#waiting.set(n, null);
    let answered = false;
    return {
      send: (packet) => {
        if (answered || this.#closed) return;
        answered = true;
        this.#waiting.set(n, packet);
        this.#waitingBytes += packet.length;
        this.#flush();
      },
    };
  }

  #flush(): void {
    for (let reply = this.#waiting.get(this.#nextToSend); reply != null; reply = this.#waiting.get(this.#nextToSend)) {
      this.#waiting.delete(this.#nextToSend);
      this.#waitingBytes -= reply.length;
      this.#nextToSend++;
      this.#write(reply);
    }
  }

  #violation(err: unknown): void {
    const reason = err instanceof MalformedPacketError ? err.message : 'internal error decoding a packet';
    this.#close(reason);
    try {
      this.#stream.end();
    } catch {
      // already gone
    }
  }

  #close(reason: string | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting.clear();
    this.#waitingBytes = 0;
    this.#handlers.closed(reason);
  }
}
