import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/random.js';

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
