import { describe, expect, it } from 'vitest';
import { ReadCacheLedger } from '../../src/tree/file/read-cache.js';

/** The process-wide bound on every reader's cached chunks (src/tree/file/read-cache.ts). */
describe('ReadCacheLedger', () => {
  it('evicts the least recently used chunk of any reader past its limit, never the one just added', () => {
    const ledger = new ReadCacheLedger(300);
    const evicted: string[] = [];
    const keys = Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [k, { k }]));
    for (const k of ['a', 'b', 'c']) ledger.add(keys[k]!, 100, () => evicted.push(k));
    expect(ledger.bytes).toBe(300);
    ledger.touch(keys['a']!); // now b is the oldest
    ledger.add(keys['d']!, 100, () => evicted.push('d'));
    expect(evicted).toEqual(['b']);
    expect(ledger.bytes).toBe(300);
    ledger.remove(keys['c']!);
    ledger.remove(keys['c']!); // twice: nothing more
    expect(ledger.bytes).toBe(200);
    const big = { k: 'big' };
    ledger.add(big, 1_000, () => evicted.push('big'));
    expect(evicted).toEqual(['b', 'a', 'd']);
    expect(ledger.bytes).toBe(1_000);
  });
});
