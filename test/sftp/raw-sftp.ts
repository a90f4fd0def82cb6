import type { Client, ClientChannel } from 'ssh2';

/**
 * A byte-level SFTP client over an ssh2 subsystem channel, for what no real
 * client sends: malformed packets, invalid UTF-8 names, extension payloads.
 */
export interface Packet {
  type: number;
  payload: Buffer;
}

export class RawSftp {
  #buffer = Buffer.alloc(0);
  #packets: Packet[] = [];
  #waiters: ((p: Packet | undefined) => void)[] = [];
  #ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly channel: ClientChannel) {
    channel.on('data', (data: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, data]);
      while (this.#buffer.length >= 4) {
        const len = this.#buffer.readUInt32BE(0);
        if (this.#buffer.length < 4 + len) break;
        const packet = { type: this.#buffer[4]!, payload: this.#buffer.subarray(5, 4 + len) };
        this.#buffer = this.#buffer.subarray(4 + len);
        const waiter = this.#waiters.shift();
        if (waiter) waiter(packet);
        else this.#packets.push(packet);
      }
    });
    this.closed = new Promise((resolve) =>
      channel.once('close', () => {
        this.#ended = true;
        for (const w of this.#waiters.splice(0)) w(undefined);
        resolve();
      }),
    );
  }

  static open(client: Client): Promise<RawSftp> {
    return new Promise((resolve, reject) => client.subsys('sftp', (err, channel) => (err ? reject(err) : resolve(new RawSftp(channel)))));
  }

  /** The next packet, or undefined if the channel closed first. */
  next(timeoutMs = 10_000): Promise<Packet | undefined> {
    const ready = this.#packets.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SFTP packet in time')), timeoutMs);
      this.#waiters.push((p) => {
        clearTimeout(timer);
        resolve(p);
      });
    });
  }

  sendBytes(bytes: Buffer): void {
    this.channel.write(bytes);
  }

  send(type: number, ...fields: Buffer[]): void {
    const body = Buffer.concat([Buffer.from([type]), ...fields]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    this.sendBytes(Buffer.concat([len, body]));
  }

  async init(): Promise<Map<string, string>> {
    this.send(1, u32(3));
    const p = await this.next();
    if (p?.type !== 2) throw new Error(`expected VERSION, got ${p?.type}`);
    const exts = new Map<string, string>();
    let off = 4;
    while (off < p.payload.length) {
      const [name, a] = readString(p.payload, off);
      const [value, b] = readString(p.payload, a);
      exts.set(name.toString(), value.toString());
      off = b;
    }
    return exts;
  }
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export function str(s: string | Buffer): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(bytes.length), bytes]);
}

export function readString(buf: Buffer, off: number): [Buffer, number] {
  const len = buf.readUInt32BE(off);
  return [buf.subarray(off + 4, off + 4 + len), off + 4 + len];
}

/** STATUS payload → [id, code, message]. */
export function status(p: Packet): { id: number; code: number; message: string } {
  if (p.type !== 101) throw new Error(`expected STATUS, got ${p.type}`);
  const [msg] = readString(p.payload, 8);
  return { id: p.payload.readUInt32BE(0), code: p.payload.readUInt32BE(4), message: msg.toString() };
}
