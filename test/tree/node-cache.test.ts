import { describe, expect, it } from 'vitest';
import { FileReadCap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import type { AbortOptions } from '../../src/errors.js';
import type { ChunkAddress } from '../../src/store/chunks/chunk-store.js';
import { ForwardingChunkStore } from '../../src/store/chunks/forwarding.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { NodeCache, nodeWeight } from '../../src/tree/dir/node-cache.js';
import { type DirNode, decodeNode, encodeNode, type StoredEntry } from '../../src/tree/dir/node-format.js';
import { createTree } from '../../src/tree/tree.js';

/** Counts reads; a wrapper, not a mock: the bytes really are stored and read. */
class GetCountingStore extends ForwardingChunkStore {
  gets = 0;
  override get(address: ChunkAddress, options?: AbortOptions): Promise<Uint8Array> {
    this.gets++;
    return this.inner.get(address, options);
  }
}

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

describe('the node cache under directory updates', () => {
  it('drops the nodes an update replaced, so a directory changed again and again keeps its current nodes cached', async () => {
    const chunks = new GetCountingStore(new MemoryChunkStore());
    // Room for the current nodes of 300 entries (some 400 KB weighed) and a little more, not for the
    // versions 300 updates replace (each replaces a bucket of some 20–32 entries and the branches above it).
    const tree = createTree({ chunks, slots: new MemorySlotStore(), nodeCacheBytes: 600_000 });
    const dir = tree.directory(await tree.createDirectory());
    const meta = { size: 1000, mtimeMs: 1, ctimeMs: 1 };
    const names = Array.from({ length: 300 }, (_, i) => `entry-${i}`);
    for (const name of names) await dir.link(name, new FileReadCap(randomBytes(32), randomBytes(32), 1000), meta);
    // Every name again, replaced in place: 300 more versions, none larger than before.
    for (const name of names) await dir.link(name, new FileReadCap(randomBytes(32), randomBytes(32), 1000), meta, { overwrite: true });
    chunks.gets = 0;
    for (const name of names) expect(await dir.lookup(name)).toBeDefined();
    expect(await dir.lookup('absent')).toBeUndefined();
    expect(chunks.gets).toBe(0);
  });
});
