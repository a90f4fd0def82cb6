import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/sftp/protocol/constants.js';
import { ReplyBuffers } from '../../src/sftp/protocol/reply-buffers.js';
import { DATA_HEADER_BYTES, finishDataPacket } from '../../src/sftp/protocol/replies.js';

describe('ReplyBuffers', () => {
  it("takes a released packet's buffer again, with the data 8-aligned in it", () => {
    const pool = new ReplyBuffers(4);
    const a = pool.take(1000);
    expect(a.length).toBe(DATA_HEADER_BYTES + 1000);
    expect((a.byteOffset + DATA_HEADER_BYTES) % 8).toBe(0);
    const reply = finishDataPacket(a, 7, 10);
    pool.release(reply);
    expect(pool.free).toBe(1);
    const b = pool.take(LIMITS.maxReadLength);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(DATA_HEADER_BYTES + LIMITS.maxReadLength);
    expect(pool.free).toBe(0);
  });

  it('never queues one buffer twice: a second release of the same packet is ignored', () => {
    const pool = new ReplyBuffers(4);
    const a = pool.take(10);
    pool.release(a);
    pool.release(a);
    expect(pool.free).toBe(1);
    const b = pool.take(10);
    const c = pool.take(10);
    expect(c.buffer).not.toBe(b.buffer);
  });

  it('ignores buffers it did not give, and keeps at most maxFree', () => {
    const pool = new ReplyBuffers(2);
    pool.release(Buffer.alloc(DATA_HEADER_BYTES + 10));
    pool.release(new Uint8Array(new SharedArrayBuffer(64)));
    expect(pool.free).toBe(0);
    const taken = [pool.take(1), pool.take(1), pool.take(1)];
    for (const p of taken) pool.release(p);
    expect(pool.free).toBe(2);
  });

  it('gives a plain buffer for more than the largest READ, and does not keep it', () => {
    const pool = new ReplyBuffers(2);
    const big = pool.take(LIMITS.maxReadLength + 1);
    expect(big.length).toBe(DATA_HEADER_BYTES + LIMITS.maxReadLength + 1);
    pool.release(big);
    expect(pool.free).toBe(0);
  });
});
