import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { EXTENSIONS, LIMITS, PACKET, STATUS } from '../../src/sftp/protocol/constants.js';
import { PacketFramer } from '../../src/sftp/protocol/framer.js';
import { packetBuffers } from '../../src/sftp/protocol/packet-buffers.js';
import {
  DATA_HEADER_BYTES,
  dataPacket,
  finishDataPacket,
  namePacket,
  statusPacket,
  versionPacket,
} from '../../src/sftp/protocol/replies.js';
import { decodeRequest, MalformedRequestError, type Request } from '../../src/sftp/protocol/requests.js';
import { symlinkOrderOf } from '../../src/sftp/protocol/symlink-order.js';
import { COALESCE_BELOW, type ReplyTicket, type SftpByteStream, SftpTransport } from '../../src/sftp/protocol/transport.js';
import { MalformedPacketError, WireReader } from '../../src/sftp/protocol/wire.js';
import { str, u32, u64 } from './raw-sftp.js';

function packet(type: number, ...fields: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...fields]);
  return Buffer.concat([u32(body.length), body]);
}

describe('PacketFramer', () => {
  it('gives the same packets however the bytes are cut', () => {
    const packets = [
      packet(17, u32(1), str('/a')),
      packet(6, u32(2), str('h'), u64(0), str(Buffer.alloc(70_000, 7))),
      packet(4, u32(3), str('h')),
    ];
    const stream = Buffer.concat(packets);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 20 }), (cuts) => {
        const framer = new PacketFramer();
        const got: Buffer[] = [];
        let at = 0;
        for (const cut of [...cuts.sort((a, b) => a - b), stream.length]) {
          for (const f of framer.push(stream.subarray(at, cut))) got.push(Buffer.concat([Buffer.from([f.type]), f.payload]));
          at = cut;
        }
        expect(got.map((b) => b.toString('hex'))).toEqual(packets.map((p) => p.subarray(4).toString('hex')));
        expect(framer.buffered).toBe(0);
      }),
    );
  });

  it('refuses an empty packet and one longer than 256 KiB as soon as its length is in', () => {
    expect(() => new PacketFramer().push(u32(0))).toThrow(MalformedPacketError);
    expect(() => new PacketFramer().push(u32(LIMITS.maxPacketLength + 1))).toThrow(MalformedPacketError);
    expect(new PacketFramer().push(u32(LIMITS.maxPacketLength))).toEqual([]);
  });
});

describe('symlinkOrderOf', () => {
  it('reads the link first from the clients that send it so to servers other than OpenSSH, the target first from the rest', () => {
    for (const software of ['libssh_0.10.6', 'AsyncSSH_2.10.1', 'WinSCP_release_6.3.5', 'phpseclib_1.0', 'phpseclib_3.0'])
      expect(symlinkOrderOf(software)).toBe('link-first');
    for (const software of [
      'OpenSSH_9.2p1',
      'libssh2_1.10.0',
      'paramiko_2.12.0',
      'JSCH-0.1.55',
      'Go',
      'PuTTY_Release_0.78',
      'rclone/v1.60.1',
      '',
    ])
      expect(symlinkOrderOf(software)).toBe('target-first');
  });
});

describe('decodeRequest', () => {
  const decode = (p: Buffer): Request => decodeRequest(p.readUInt8(4), p.subarray(5));

  it('decodes each request type, paths as strict UTF-8 (null when invalid)', () => {
    expect(decode(packet(PACKET.OPEN, u32(1), str('/f'), u32(0x1a), u32(0x4), u32(0o644)))).toEqual({
      type: 'open',
      id: 1,
      path: '/f',
      pflags: 0x1a,
      attrs: { mode: 0o644 },
    });
    expect(decode(packet(PACKET.READ, u32(2), str('hh'), u64(2 ** 40), u32(32768)))).toMatchObject({
      type: 'read',
      offset: 2 ** 40,
      length: 32768,
    });
    expect(decode(packet(PACKET.WRITE, u32(3), str('hh'), u64(5), str('data')))).toMatchObject({ type: 'write', offset: 5 });
    expect(decode(packet(PACKET.STAT, u32(4), str(Buffer.from([0x2f, 0xff]))))).toEqual({ type: 'stat', id: 4, path: null });
    expect(decode(packet(PACKET.STAT, u32(4), str('/cafe\u0301')))).toEqual({ type: 'stat', id: 4, path: '/cafe\u0301' });
    expect(decode(packet(PACKET.RENAME, u32(5), str('/a'), str('/b')))).toEqual({ type: 'rename', id: 5, from: '/a', to: '/b' });
    // OpenSSH's order: the target first, then the link's own path.
    expect(decode(packet(PACKET.SYMLINK, u32(6), str('target'), str('/link')))).toMatchObject({ type: 'symlink', link: '/link' });
    const link = packet(PACKET.SYMLINK, u32(6), str('/link'), str(Buffer.from([0x74, 0xff])));
    // The draft's order, from the clients that keep it with servers other than OpenSSH: the link first.
    expect(decodeRequest(link.readUInt8(4), link.subarray(5), 'link-first')).toEqual({
      type: 'symlink',
      id: 6,
      target: Buffer.from([0x74, 0xff]), // a target is bytes, kept as they came
      link: '/link',
    });
    expect(decode(packet(PACKET.SETSTAT, u32(7), str('/f'), u32(0x8), u32(10), u32(20)))).toMatchObject({
      attrs: { atime: 10, mtime: 20 },
    });
    expect(decode(packet(PACKET.EXTENDED, u32(8), str('limits@openssh.com')))).toMatchObject({
      type: 'extended',
      name: 'limits@openssh.com',
    });
    expect(decode(packet(99, u32(9), Buffer.from('junk')))).toEqual({ type: 'unknown', id: 9, packetType: 99 });
    // A uint64 beyond 2^53 - 1 is clamped, never a wrong small number.
    expect(decode(packet(PACKET.READ, u32(2), str('h'), Buffer.alloc(8, 0xff), u32(1)))).toMatchObject({ offset: Number.MAX_SAFE_INTEGER });
  });

  it('a request that does not parse after its id is MalformedRequestError with that id; without an id, MalformedPacketError', () => {
    const bad = [
      packet(PACKET.READ, u32(11), u32(200)),
      packet(PACKET.WRITE, u32(11), str('h'), u64(0)),
      packet(PACKET.STAT, u32(11), str('/'), u32(0)),
      packet(PACKET.SETSTAT, u32(11), str('/'), u32(0x80000000), u32(2), str('a')),
    ];
    for (const p of bad) expect(() => decode(p)).toThrow(expect.objectContaining({ name: 'MalformedRequestError', id: 11 }));
    expect(() => decode(packet(PACKET.CLOSE, Buffer.from([0, 0])))).toThrow(MalformedPacketError);
  });

  it('random payloads decode or throw one of the two malformed errors, nothing else (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 }), (type, bytes) => {
        try {
          decodeRequest(type, Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedPacketError);
          if (bytes.length >= 4) expect(err).toBeInstanceOf(MalformedRequestError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('replies', () => {
  it('VERSION is 3 with every extension', () => {
    const v = versionPacket();
    const r = new WireReader(v);
    expect(r.u32()).toBe(v.length - 4);
    expect(r.u8()).toBe(PACKET.VERSION);
    expect(r.u32()).toBe(3);
    const seen: [string, string][] = [];
    while (r.remaining > 0) seen.push([r.bytes().toString(), r.bytes().toString()]);
    expect(seen).toEqual(EXTENSIONS.map(([n, ver]) => [n, ver]));
  });

  it('STATUS, DATA and NAME round-trip through the reader', () => {
    const s = new WireReader(statusPacket(3, STATUS.EOF, 'end'), 5);
    expect([s.u32(), s.u32(), s.bytes().toString(), s.bytes().toString()]).toEqual([3, STATUS.EOF, 'end', '']);
    const d = new WireReader(dataPacket(4, Buffer.from('xyz')), 5);
    expect([d.u32(), d.bytes().toString()]).toEqual([4, 'xyz']);
    const n = new WireReader(
      namePacket(5, [{ filename: 'é', longname: 'l', attrs: { size: 1, uid: 0, gid: 0, mode: 0o644, atime: 1, mtime: 2 } }]),
      5,
    );
    expect([n.u32(), n.u32(), n.bytes().toString(), n.bytes().toString()]).toEqual([5, 1, 'é', 'l']);
    expect(n.attrs()).toEqual({ size: 1, uid: 0, gid: 0, mode: 0o644, atime: 1, mtime: 2 });
    n.end();
  });
});

/** An in-memory SFTP stream: what the transport writes is collected; `window` bytes may be taken before writes wait. */
class MemoryStream extends EventEmitter implements SftpByteStream {
  /** Copies of what was written (the transport reuses a buffer once its write is done). */
  readonly sent: Buffer[] = [];
  /** The buffers written, as given. */
  readonly writes: Buffer[] = [];
  readonly held: [Buffer, (err?: Error | null) => void][] = [];
  paused = false;
  ended = false;
  constructor(public window = Number.POSITIVE_INFINITY) {
    super();
  }
  write(chunk: Buffer, done: (err?: Error | null) => void): boolean {
    if (this.window >= chunk.length) {
      this.window -= chunk.length;
      this.#take(chunk);
      queueMicrotask(done);
    } else {
      this.held.push([chunk, done]);
    }
    return true;
  }
  /** The client reads: opens the window by `n` and lets held writes through. */
  open(n: number): void {
    this.window += n;
    while (this.held.length > 0 && (this.held[0]?.[0].length ?? 0) <= this.window) {
      const [chunk, done] = this.held.shift()!;
      this.window -= chunk.length;
      this.#take(chunk);
      done();
    }
  }
  #take(chunk: Buffer): void {
    this.writes.push(chunk);
    this.sent.push(Buffer.from(chunk));
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  end(): void {
    this.ended = true;
    this.writesAtEnd ??= this.sent.length;
  }
  /** How many writes had reached the stream when it was ended. */
  writesAtEnd: number | undefined;
  /** The SFTP packets written, however the transport grouped them into writes. */
  packets(): Buffer[] {
    const out: Buffer[] = [];
    for (const chunk of this.sent) {
      for (let at = 0; at < chunk.length; at += 4 + chunk.readUInt32BE(at)) out.push(chunk.subarray(at, at + 4 + chunk.readUInt32BE(at)));
    }
    return out;
  }
  /** Request ids of the replies written (after VERSION). */
  ids(): number[] {
    return this.packets()
      .slice(1)
      .map((p) => p.readUInt32BE(5));
  }
}

/** Lets the transport write what is ready (it groups the replies of one turn into one write). */
const written = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

/** The data of a DATA reply written on its own, not grouped. */
const LARGE = COALESCE_BELOW;

describe('SftpTransport', () => {
  it('answers 64 pipelined READs in the order they came, whatever order the work finishes in', async () => {
    const stream = new MemoryStream();
    const tickets: [Request, ReplyTicket][] = [];
    new SftpTransport(stream, { request: (r, t) => tickets.push([r, t]), end: () => {}, closed: () => {} });
    const reads = Array.from({ length: 64 }, (_, i) => packet(PACKET.READ, u32(1000 + i), str('h'), u64(i * 32768), u32(32768)));
    stream.emit('data', Buffer.concat([packet(PACKET.INIT, u32(3)), ...reads]));
    expect(tickets).toHaveLength(64);
    // Finish the work in a shuffled order; every reply leaves only when all before it have.
    const order = fc.sample(fc.shuffledSubarray([...tickets.keys()], { minLength: 64, maxLength: 64 }), 1)[0]!;
    for (const i of order) {
      const [request, ticket] = tickets[i]!;
      ticket.send(dataPacket(request.id, Buffer.alloc(10)));
      await written();
      const ids = stream.ids();
      expect(ids).toEqual(ids.map((_, k) => 1000 + k));
    }
    expect(stream.ids()).toEqual(tickets.map(([r]) => r.id));
  });

  it('a malformed request is answered BAD_MESSAGE in its place in the order; a second INIT ends the session', async () => {
    const stream = new MemoryStream();
    const tickets: ReplyTicket[] = [];
    let closedFor: string | undefined;
    new SftpTransport(stream, { request: (_r, t) => tickets.push(t), end: () => {}, closed: (reason) => (closedFor = reason) });
    stream.emit(
      'data',
      Buffer.concat([packet(PACKET.INIT, u32(3)), packet(PACKET.STAT, u32(1), str('/')), packet(PACKET.READ, u32(2), u32(9))]),
    );
    await written();
    expect(stream.ids()).toEqual([]); // 2's BAD_MESSAGE waits for 1
    tickets[0]?.send(statusPacket(1, STATUS.OK));
    await written();
    expect(stream.ids()).toEqual([1, 2]);
    expect(stream.packets()[2]?.readUInt32BE(9)).toBe(STATUS.BAD_MESSAGE);
    stream.emit('data', packet(PACKET.INIT, u32(3)));
    expect(closedFor).toMatch(/second INIT/);
    expect(stream.ended).toBe(true);
  });

  it('counts in its backlog what the client has not taken (written or waiting for its turn), and says when the client takes some', async () => {
    const stream = new MemoryStream(100);
    const tickets: ReplyTicket[] = [];
    let taken = 0;
    const transport = new SftpTransport(stream, {
      request: (_r, t) => tickets.push(t),
      end: () => {},
      closed: () => {},
      taken: () => taken++,
    });
    stream.emit(
      'data',
      Buffer.concat([
        packet(PACKET.INIT, u32(3)),
        packet(PACKET.READ, u32(1), str('h'), u64(0), u32(1)),
        packet(PACKET.READ, u32(2), str('h'), u64(0), u32(1)),
      ]),
    );
    // 2's reply waits for 1's: counted all the same.
    tickets[1]?.send(dataPacket(2, Buffer.alloc(3000)));
    expect(transport.backlog).toBe(versionPacket().length + 3013);
    tickets[0]?.send(dataPacket(1, Buffer.alloc(5000)));
    expect(transport.backlog).toBe(versionPacket().length + 5013 + 3013);
    expect(taken).toBe(0);
    stream.open(100_000);
    await vi.waitFor(() => expect(transport.backlog).toBe(0));
    expect(taken).toBeGreaterThan(0);
  });

  it("reuses a pooled DATA reply's buffer only once the stream is done with it, and never after an error", async () => {
    const stream = new MemoryStream(0);
    const tickets: ReplyTicket[] = [];
    new SftpTransport(stream, { request: (_r, t) => tickets.push(t), end: () => {}, closed: () => {} });
    stream.emit('data', Buffer.concat([packet(PACKET.INIT, u32(3)), packet(PACKET.READ, u32(1), str('h'), u64(0), u32(LARGE))]));
    await written(); // VERSION, on its own
    while (packetBuffers.free > 0) packetBuffers.take(1); // an empty pool: what comes back below is ours
    // A reply this large is written as it is, and held for the client's window: not given back.
    const reply = finishDataPacket(packetBuffers.take(DATA_HEADER_BYTES + LARGE, DATA_HEADER_BYTES).fill(1), 1, LARGE);
    tickets[0]?.send(reply);
    expect(packetBuffers.free).toBe(0);
    stream.open(versionPacket().length + reply.length);
    expect(stream.writes.at(-1)).toBe(reply);
    expect(packetBuffers.free).toBe(1);
    expect(packetBuffers.take(DATA_HEADER_BYTES + 8, DATA_HEADER_BYTES).buffer).toBe(reply.buffer);

    // A write that fails may leave the bytes with the stream: that buffer is not taken again.
    const failing = new MemoryStream();
    failing.write = (_chunk, done) => {
      queueMicrotask(() => done(new Error('channel gone')));
      return false;
    };
    const more: ReplyTicket[] = [];
    new SftpTransport(failing, { request: (_r, t) => more.push(t), end: () => {}, closed: () => {} });
    failing.emit('data', Buffer.concat([packet(PACKET.INIT, u32(3)), packet(PACKET.READ, u32(2), str('h'), u64(0), u32(LARGE))]));
    more[0]?.send(finishDataPacket(packetBuffers.take(DATA_HEADER_BYTES + LARGE, DATA_HEADER_BYTES), 2, LARGE));
    await new Promise((r) => setImmediate(r));
    expect(packetBuffers.free).toBe(0);
  });

  it('small replies ready in one turn leave as one write, in order; a large one flushes them and goes alone; a group stays within one packet buffer', async () => {
    const stream = new MemoryStream();
    const tickets: [Request, ReplyTicket][] = [];
    new SftpTransport(stream, { request: (r, t) => tickets.push([r, t]), end: () => {}, closed: () => {} });
    const reads = Array.from({ length: 20 }, (_, i) => packet(PACKET.READ, u32(i), str('h'), u64(0), u32(32768)));
    stream.emit('data', Buffer.concat([packet(PACKET.INIT, u32(3)), ...reads]));
    await written();
    expect(stream.sent).toHaveLength(1); // VERSION
    const reply = (i: number, n: number): Buffer => dataPacket(tickets[i]![0].id, Buffer.alloc(n, i));
    // Seven replies to 32 KiB READs in one turn: one write, not seven.
    for (let i = 0; i < 7; i++) tickets[i]![1].send(reply(i, 32768));
    expect(stream.sent).toHaveLength(1);
    await written();
    expect(stream.sent).toHaveLength(2);
    expect(stream.ids()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // Small ones, then a large one: the small ones are written first, the large one after them, as it is.
    tickets[7]![1].send(reply(7, 10));
    tickets[8]![1].send(reply(8, 10));
    tickets[9]![1].send(reply(9, 10));
    const large = reply(10, LARGE);
    tickets[10]![1].send(large);
    expect(stream.sent).toHaveLength(4);
    expect(stream.writes.at(-1)).toBe(large);
    expect(stream.ids()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Nine more of 32 KiB: a group never outgrows a pooled packet buffer (256 KiB), the rest follows.
    for (let i = 11; i < 20; i++) tickets[i]![1].send(reply(i, 32768));
    await written();
    const groups = stream.sent.slice(4);
    expect(groups.map((g) => g.length)).toEqual([7 * 32781, 2 * 32781]);
    expect(groups.length).toBeGreaterThan(1);
    for (const g of groups) expect(g.length).toBeLessThanOrEqual(LIMITS.maxPacketLength);
    expect(stream.ids()).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const p of stream.packets().slice(12)) expect(p.subarray(13).every((b) => b === p.readUInt32BE(5))).toBe(true);
  });

  it('finish writes the replies still grouped for this turn before it ends the channel (the client sent EOF after its last request)', async () => {
    const stream = new MemoryStream();
    const tickets: ReplyTicket[] = [];
    const transport = new SftpTransport(stream, { request: (_r, t) => tickets.push(t), end: () => {}, closed: () => {} });
    stream.emit('data', Buffer.concat([packet(PACKET.INIT, u32(3)), packet(PACKET.STAT, u32(1), str('/'))]));
    tickets[0]?.send(statusPacket(1, STATUS.OK));
    // As sftp-session.ts does on EOF: finish once the last request is answered, in a promise callback,
    // which runs before the turn's grouped replies would be written.
    await Promise.resolve().then(() => transport.finish(0));
    expect(stream.ended).toBe(true);
    expect(stream.writesAtEnd).toBe(stream.sent.length);
    expect(stream.ids()).toEqual([1]);
  });
});
