import { randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pooledFillCount, randomBytes, randomFillPooled } from '../../src/crypto/random.js';

describe('randomBytes', () => {
  it('gives each caller bytes of its own, never the same bytes twice, across pool refills', () => {
    const seen = new Set<string>();
    // 24-byte nonces: well past several 4 KiB refills of the pool.
    for (let i = 0; i < 2000; i++) {
      const nonce = randomBytes(24);
      expect(nonce).toBeInstanceOf(Uint8Array);
      expect(nonce.length).toBe(24);
      expect(nonce.byteOffset).toBe(0);
      expect(nonce.buffer.byteLength).toBe(24);
      seen.add(Buffer.from(nonce).toString('hex'));
    }
    expect(seen.size).toBe(2000);
  });

  it('serves sizes above the pooled bound and zero, and refuses nonsense', () => {
    expect(randomBytes(0).length).toBe(0);
    const big = randomBytes(1000);
    expect(big.length).toBe(1000);
    expect(big.some((b) => b !== 0)).toBe(true);
    expect(() => randomBytes(-1)).toThrow(RangeError);
    expect(() => randomBytes(1.5)).toThrow(RangeError);
  });

  it('looks uniform: every byte value turns up in 64 KiB of small requests', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 2048; i++) for (const b of randomBytes(32)) counts[b] = (counts[b] ?? 0) + 1;
    // Expected 256 per value; a pool handed out twice or zeros leaking would skew it far past this.
    expect(Math.min(...counts)).toBeGreaterThan(150);
    expect(Math.max(...counts)).toBeLessThan(380);
  });
});

describe('randomFillPooled (ssh2 packet padding)', () => {
  it('fills exactly the range asked and returns the buffer; never the same bytes twice, across pool refills', () => {
    const seen = new Set<string>();
    const before = pooledFillCount();
    for (let i = 0; i < 1000; i++) {
      const packet = Buffer.alloc(64, 0xee);
      expect(randomFillPooled(packet, 21, 19)).toBe(packet);
      expect(packet.subarray(0, 21).every((b) => b === 0xee)).toBe(true);
      expect(packet.subarray(40).every((b) => b === 0xee)).toBe(true);
      seen.add(packet.subarray(21, 40).toString('hex'));
    }
    expect(seen.size).toBe(1000);
    expect(pooledFillCount() - before).toBe(1000);
  });

  it('leaves every other form to randomFillSync: the whole buffer, large sizes, other views, and its errors', () => {
    const before = pooledFillCount();
    const whole = new Uint8Array(32);
    expect(randomFillPooled(whole)).toBe(whole);
    expect(whole.some((b) => b !== 0)).toBe(true);
    const large = Buffer.alloc(300);
    randomFillPooled(large, 10, 250);
    expect(large.subarray(10, 260).some((b) => b !== 0)).toBe(true);
    expect(large.subarray(260).every((b) => b === 0)).toBe(true);
    const words = new Uint32Array(4);
    randomFillPooled(words, 1, 2);
    expect(words[0]).toBe(0);
    expect(words[3]).toBe(0);
    expect(pooledFillCount()).toBe(before);
    for (const [offset, size] of [
      [60, 10],
      [-1, 4],
      [0, -2],
      [0, 65],
    ] as const) {
      const ours = (() => {
        try {
          randomFillPooled(Buffer.alloc(64), offset, size);
        } catch (err) {
          return (err as { code?: string }).code;
        }
      })();
      const node = (() => {
        try {
          randomFillSync(Buffer.alloc(64), offset, size);
        } catch (err) {
          return (err as { code?: string }).code;
        }
      })();
      expect(ours, `${offset}, ${size}`).toBe(node);
      expect(ours).toBeDefined();
    }
  });
});
