import { describe, expect, it } from 'vitest';
import { LIMITS, PACKET } from '../../src/sftp/protocol/constants.js';
import { PacketFramer } from '../../src/sftp/protocol/framer.js';
import { PacketBuffers, packetBuffers } from '../../src/sftp/protocol/packet-buffers.js';
import { DATA_HEADER_BYTES, finishDataPacket } from '../../src/sftp/protocol/replies.js';
import { decodeRequest } from '../../src/sftp/protocol/requests.js';
import { str, u32, u64 } from './raw-sftp.js';

describe('PacketBuffers', () => {
  it("takes a released packet's buffer again, with the chosen byte 8-aligned in it", () => {
    const pool = new PacketBuffers(4);
    const a = pool.take(DATA_HEADER_BYTES + 1000, DATA_HEADER_BYTES);
    expect(a.length).toBe(DATA_HEADER_BYTES + 1000);
    expect((a.byteOffset + DATA_HEADER_BYTES) % 8).toBe(0);
    const reply = finishDataPacket(a, 7, 10);
    pool.release(reply);
    expect(pool.free).toBe(1);
    const b = pool.take(LIMITS.maxPacketLength, 25);
    expect(b.buffer).toBe(a.buffer);
    expect((b.byteOffset + 25) % 8).toBe(0);
    expect(pool.free).toBe(0);
  });

  it('never queues one buffer twice: a second release of the same packet is ignored', () => {
    const pool = new PacketBuffers(4);
    const a = pool.take(10);
    pool.release(a);
    pool.release(a);
    expect(pool.free).toBe(1);
    const b = pool.take(10);
    const c = pool.take(10);
    expect(c.buffer).not.toBe(b.buffer);
  });

  it('ignores buffers it did not give, and keeps at most maxFree', () => {
    const pool = new PacketBuffers(2);
    pool.release(Buffer.alloc(DATA_HEADER_BYTES + 10));
    pool.release(new Uint8Array(new SharedArrayBuffer(64)));
    expect(pool.free).toBe(0);
    const taken = [pool.take(1), pool.take(1), pool.take(1)];
    for (const p of taken) pool.release(p);
    expect(pool.free).toBe(2);
  });

  it('gives a plain buffer past the largest packet, and does not keep it', () => {
    const pool = new PacketBuffers(2);
    const big = pool.take(LIMITS.maxPacketLength + 1);
    expect(big.length).toBe(LIMITS.maxPacketLength + 1);
    pool.release(big);
    expect(pool.free).toBe(0);
  });
});

/** uint32 length ‖ WRITE ‖ id ‖ handle ‖ offset ‖ data. */
function writePacket(handle: Buffer, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([PACKET.WRITE]), u32(9), str(handle), u64(0), str(data)]);
  return Buffer.concat([u32(body.length), body]);
}

/** `bytes` cut into SSH-packet-sized pieces starting `first` bytes in, as ssh2 hands them over. */
function pieces(bytes: Buffer, first: number, size = 32 * 1024): Buffer[] {
  const out = [bytes.subarray(0, first)];
  for (let at = first; at < bytes.length; at += size) out.push(Buffer.from(bytes.subarray(at, at + size)));
  return out;
}

describe('PacketFramer and the pool', () => {
  it('assembles a large WRITE that spans pieces in a pooled buffer, its data 8-aligned, whatever the cut', () => {
    const data = Buffer.alloc(LIMITS.maxWriteLength, 7);
    for (const handle of [Buffer.from([0, 0, 0, 1]), Buffer.from('a-longer-handle')]) {
      for (const first of [3, 11, 4096]) {
        const framer = new PacketFramer();
        const frames = pieces(writePacket(handle, data), first).flatMap((piece) => framer.push(piece));
        expect(frames).toHaveLength(1);
        const request = decodeRequest(frames[0]!.type, frames[0]!.payload);
        if (request.type !== 'write') throw new Error('not a WRITE');
        expect(Buffer.compare(request.data, data)).toBe(0);
        expect(request.data.byteOffset % 8).toBe(0);
        const before = packetBuffers.free;
        packetBuffers.release(request.data);
        expect(packetBuffers.free).toBe(before + 1);
      }
    }
  });

  it('leaves a packet that arrived in one piece as a view, and small or other packets out of the pool', () => {
    const handle = Buffer.from([0, 0, 0, 1]);
    const whole = writePacket(handle, Buffer.alloc(100_000, 1));
    const [one] = new PacketFramer().push(whole);
    expect(one?.payload.buffer).toBe(whole.buffer);
    const framer = new PacketFramer();
    const small = pieces(writePacket(handle, Buffer.alloc(1000, 2)), 10, 500).flatMap((p) => framer.push(p));
    const before = packetBuffers.free;
    for (const frame of small) packetBuffers.release(frame.payload);
    expect(packetBuffers.free).toBe(before);
  });
});
