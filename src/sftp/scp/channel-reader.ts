/** What scp reads from: an exec channel (ssh2's ServerChannel is one). */
export interface ReadableChannel {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'end' | 'close', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

/** A protocol line longer than this ends the transfer (OpenSSH's scp reads them into 2 KiB). */
export const MAX_LINE_BYTES = 4096;
/** Bytes read ahead of the transfer before the channel is paused (the client's SSH window closes then). */
const HIGH_WATER = 512 * 1024;

/** A line the peer sent is not one: too long, or cut off by the end of the stream. */
export class ScpProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScpProtocolError';
  }
}

/**
 * Reads an scp stream as its protocol does: a byte, a line, or the next
 * piece of a file's bytes. Holds at most HIGH_WATER bytes read ahead; past
 * that the channel is paused until the reader catches up.
 */
export class ChannelReader {
  readonly #channel: ReadableChannel;
  readonly #pieces: Buffer[] = [];
  #buffered = 0;
  #ended = false;
  #paused = false;
  #wake: (() => void) | undefined;

  constructor(channel: ReadableChannel) {
    this.#channel = channel;
    channel.on('data', (chunk) => {
      this.#pieces.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > HIGH_WATER && !this.#paused) {
        this.#paused = true;
        channel.pause();
      }
      this.#notify();
    });
    const end = (): void => {
      this.#ended = true;
      this.#notify();
    };
    channel.once('end', end);
    channel.once('close', end);
  }

  /** The next byte, or undefined at the end of the stream. */
  async byte(): Promise<number | undefined> {
    if (!(await this.#some())) return undefined;
    return this.#take(1)[0];
  }

  /** Up to the next newline (not included), at most MAX_LINE_BYTES, as UTF-8 (a bad sequence becomes U+FFFD). */
  async line(): Promise<string> {
    return (await this.lineBytes()).toString('utf8');
  }

  /** Up to the next newline (not included), at most MAX_LINE_BYTES. */
  async lineBytes(): Promise<Buffer> {
    const parts: Buffer[] = [];
    let length = 0;
    for (;;) {
      if (!(await this.#some())) throw new ScpProtocolError('lost connection');
      const first = this.#pieces[0];
      if (first === undefined) continue;
      const newline = first.indexOf(0x0a);
      const part = this.#take(newline === -1 ? first.length : newline + 1);
      length += part.length;
      if (length > MAX_LINE_BYTES) throw new ScpProtocolError('line too long');
      if (newline === -1) {
        parts.push(part);
        continue;
      }
      parts.push(part.subarray(0, part.length - 1));
      return Buffer.concat(parts);
    }
  }

  /** The next piece of at most `max` bytes (a view); undefined at the end of the stream. */
  async piece(max: number): Promise<Buffer | undefined> {
    if (!(await this.#some())) return undefined;
    return this.#take(Math.min(max, this.#pieces[0]?.length ?? 0));
  }

  /** Waits for a byte to read; false at the end of the stream. */
  async #some(): Promise<boolean> {
    while (this.#buffered === 0) {
      if (this.#ended) return false;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    return true;
  }

  /** Takes `n` bytes from the first piece (n ≤ its length). */
  #take(n: number): Buffer {
    const first = this.#pieces[0];
    if (first === undefined) return Buffer.alloc(0);
    const out = first.subarray(0, n);
    if (n === first.length) this.#pieces.shift();
    else this.#pieces[0] = first.subarray(n);
    this.#buffered -= n;
    if (this.#paused && this.#buffered <= HIGH_WATER / 2) {
      this.#paused = false;
      this.#channel.resume();
    }
    return out;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
