import { describe, expect, it } from 'vitest';
import { NodeCache, nodeWeight } from '../../src/tree/dir/node-cache.js';
import { type DirNode, decodeNode, encodeNode, type StoredEntry } from '../../src/tree/dir/node-format.js';

function bucket(n: number): { node: DirNode; plaintext: Uint8Array } {
  const entries: StoredEntry[] = [];
  for (let i = 0; i < n; i++) {
    const name = `file-${String(i).padStart(5, '0')}.bin`;
    const cap = `CS1:CHK:${'a'.repeat(52)}:${'b'.repeat(52)}:16384`;
    entries.push({
      name,
      nameUtf8: new TextEncoder().encode(name),
      cap: { kind: 'text', text: cap },
      metadata: { size: 16384, mtimeMs: 1, ctimeMs: 1 },
    });
  }
  const plaintext = encodeNode({ kind: 'bucket', entries });
  return { node: decodeNode(plaintext), plaintext };
}

describe('NodeCache', () => {
  it('weighs a decoded node at what it keeps resident, not at its plaintext', () => {
    const { node, plaintext } = bucket(200);
    // 887 resident bytes per such entry were measured (src/tree/dir/node-cache.ts); the weight must not be far under.
    expect(nodeWeight(node, plaintext.length)).toBeGreaterThan(200 * 850);
    expect(nodeWeight(node, plaintext.length)).toBeLessThan(200 * 1200);
  });

  it('keeps its weighed bytes under its bound, dropping the least recently used first', () => {
    const { node, plaintext } = bucket(100);
    const weight = nodeWeight(node, plaintext.length);
    const cache = new NodeCache(weight * 3 + 1);
    for (const address of ['a', 'b', 'c']) cache.set('si', address, node, plaintext.length);
    expect(cache.get('si', 'a')).toBe(node); // a is now the most recent
    cache.set('si', 'd', node, plaintext.length);
    expect(cache.size).toEqual({ nodes: 3, bytes: weight * 3 });
    expect(cache.get('si', 'b')).toBeUndefined();
    expect(cache.get('si', 'a')).toBe(node);
    expect(cache.get('other-si', 'a')).toBeUndefined();
  });

  it('does not keep a node heavier than the whole bound', () => {
    const { node, plaintext } = bucket(100);
    const cache = new NodeCache(nodeWeight(node, plaintext.length) - 1);
    cache.set('si', 'a', node, plaintext.length);
    expect(cache.size).toEqual({ nodes: 0, bytes: 0 });
  });
});
