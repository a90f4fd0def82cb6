import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileReadCap, type DirectoryWriteCap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunk-store.js';
import { MemoryChunkStore } from '../../src/store/memory-chunk-store.js';
import { MemorySlotStore } from '../../src/store/memory-slot-store.js';
import { storageIndexHex } from '../../src/store/slot-limits.js';
import type { SlotStore } from '../../src/store/slot-store.js';
import type { EntryMetadata } from '../../src/tree/api.js';
import { DEFAULT_LAYOUT } from '../../src/tree/dir/context.js';
import { DirectoryKeys } from '../../src/tree/dir/keys.js';
import { openNode, type DirNode } from '../../src/tree/dir/node-format.js';
import { verifySlotRecord } from '../../src/tree/dir/slot-record.js';
import { createTreeWithInternals } from '../../src/tree/tree.js';
// Counts bytes put; a wrapper, not a mock: the bytes really are stored.
import { CountingChunkStore } from '../../bench/dir-growth.js';

const meta: EntryMetadata = { size: 1, mtimeMs: 1_700_000_000_000, ctimeMs: 1_700_000_000_000 };
const fileCap = (i: number): FileReadCap => new FileReadCap(randomBytes(32), randomBytes(32), 1000 + i);

/** The HAMT's shape: buckets as their sorted names, branches as their fan-out and children. */
type Shape = string[] | { bits: number; children: (Shape | null)[] };

async function shapeOf(chunks: ChunkStore, slots: SlotStore, cap: DirectoryWriteCap): Promise<Shape> {
  const keys = new DirectoryKeys(cap);
  const root = verifySlotRecord(cap.publicKey, storageIndexHex(cap.storageIndex), (await slots.get(cap.storageIndex))!).root;
  const walk = async (address: ChunkAddress): Promise<Shape> => {
    const node: DirNode = openNode(keys, address, await chunks.get(address)).node;
    if (node.kind === 'bucket') return node.entries.map((e) => e.name);
    return { bits: node.bits, children: await Promise.all(node.children.map((c) => (c.address ? walk(c.address) : null))) };
  };
  return walk(root);
}

/** A random source that repeats: two Trees built with the same seed make the same write secrets. */
function seededRandom(seed: string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      out.set(
        createHash('sha256')
          .update(`${seed}/${counter++}`)
          .digest()
          .subarray(0, Math.min(32, n - off)),
        off,
      );
    }
    return out;
  };
}

describe('directory growth', () => {
  it('10,000 adds one at a time: bytes written per add stay far from linear', async () => {
    const chunks = new CountingChunkStore(new MemoryChunkStore());
    const slots = new MemorySlotStore();
    const tree = createTreeWithInternals({ chunks, slots }, {});
    const cap = await tree.createDirectory();
    const dir = tree.directory(cap);
    const window = 50;
    const perAdd = new Map<number, number>();
    let start = 0;
    for (let i = 1; i <= 10_000; i++) {
      if ([100, 1_000, 10_000].includes(i + window - 1)) start = chunks.bytes;
      await dir.link(`file-${String(i).padStart(6, '0')}.dat`, fileCap(i), meta);
      if ([100, 1_000, 10_000].includes(i)) perAdd.set(i, (chunks.bytes - start) / window);
    }
    const started = performance.now();
    let listed = 0;
    for await (const _ of createTreeWithInternals({ chunks, slots }, {}).directory(cap).list()) listed++;
    const listMs = performance.now() - started;
    console.log(
      `layout B=${DEFAULT_LAYOUT.bucketMax} k=${DEFAULT_LAYOUT.branchBits}: bytes/add ` +
        [...perAdd].map(([n, b]) => `${n}: ${Math.round(b)}`).join(', ') +
        `; cold list of ${listed}: ${listMs.toFixed(0)} ms (memory store)`,
    );
    expect(listed).toBe(10_000);
    expect(await dir.count()).toBe(10_000);
    // Structural: a whole-directory rewrite would be ~100× from 100 to 10,000 entries.
    expect(perAdd.get(10_000)!).toBeLessThan(3 * perAdd.get(100)!);
    expect(perAdd.get(1_000)!).toBeLessThan(3 * perAdd.get(100)!);
  });

  it('the shape depends only on the set of names: deletes collapse branches back into buckets', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `n-${i}`);
    const keep = names.filter((_, i) => i % 6 === 0); // 50 names: more than one bucket holds
    // Same seed, so both trees create a directory with the same write secret (same name hashes).
    const a = { chunks: new MemoryChunkStore(), slots: new MemorySlotStore() };
    const b = { chunks: new MemoryChunkStore(), slots: new MemorySlotStore() };
    const treeA = createTreeWithInternals(a, { randomBytes: seededRandom('shape') });
    const treeB = createTreeWithInternals(b, { randomBytes: seededRandom('shape') });
    const capA = await treeA.createDirectory();
    const capB = await treeB.createDirectory();
    expect(capA.toString()).toBe(capB.toString());

    for (const n of names) await treeA.directory(capA).link(n, fileCap(0), meta);
    const full = await shapeOf(a.chunks, a.slots, capA);
    expect(Array.isArray(full)).toBe(false);
    for (const n of names) if (!keep.includes(n)) await treeA.directory(capA).unlink(n);
    for (const n of [...keep].reverse()) await treeB.directory(capB).link(n, fileCap(0), meta);
    expect(await shapeOf(a.chunks, a.slots, capA)).toEqual(await shapeOf(b.chunks, b.slots, capB));

    // Down to bucketMax entries: the whole directory is one root bucket again.
    const rest = keep.slice(DEFAULT_LAYOUT.bucketMax);
    for (const n of rest) await treeA.directory(capA).unlink(n);
    const collapsed = await shapeOf(a.chunks, a.slots, capA);
    expect(Array.isArray(collapsed)).toBe(true);
    expect((collapsed as string[]).length).toBe(DEFAULT_LAYOUT.bucketMax);
    expect(await treeA.directory(capA).count()).toBe(DEFAULT_LAYOUT.bucketMax);

    // And to nothing: an empty root bucket.
    for (const n of keep.slice(0, DEFAULT_LAYOUT.bucketMax)) await treeA.directory(capA).unlink(n);
    expect(await shapeOf(a.chunks, a.slots, capA)).toEqual([]);
  });

  it('a rename and an overwrite in a large directory rewrite only a few nodes', async () => {
    const chunks = new CountingChunkStore(new MemoryChunkStore());
    // A fixed random source fixes the directory's keys, so the HAMT's shape:
    // with random keys, a run now and then had the rename's insert split a
    // full bucket (eight more puts), which is correct but not what this counts.
    let counter = 0;
    const seeded = (n: number): Uint8Array => {
      const out = new Uint8Array(n);
      for (let off = 0; off < n; off += 32)
        out.set(
          createHash('sha256')
            .update(`seed ${counter++}`)
            .digest()
            .subarray(0, n - off),
          off,
        );
      return out;
    };
    const tree = createTreeWithInternals({ chunks, slots: new MemorySlotStore() }, { randomBytes: seeded });
    const cap = await tree.createDirectory();
    const dir = tree.directory(cap);
    for (let i = 0; i < 2_000; i++) await dir.link(`f${i}`, fileCap(i), meta);
    const before = chunks.puts;
    await dir.rename('f1', 'renamed');
    await dir.link('f2', fileCap(2), meta, { overwrite: true });
    await dir.setMetadata('f3', { size: 99 });
    // Each is one path (rename: two paths sharing the root), a handful of nodes, not hundreds.
    expect(chunks.puts - before).toBeLessThanOrEqual(4 * 2 + 3 * 2);
    expect(await dir.count()).toBe(2_000);
  });
});
