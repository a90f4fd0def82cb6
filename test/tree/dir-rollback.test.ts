import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DirectoryWriteCap } from '../../src/cap/index.js';
import { IntegrityError } from '../../src/errors.js';
import { FileSlotWatermarks } from '../../src/node/slot-watermarks.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import type { SlotEntry, SlotStore } from '../../src/store/slots/slot-store.js';
import { createTree, MemorySlotWatermarks, type SlotRollback } from '../../src/tree/index.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Rollback detection (docs/spec/slots.md, Rollback): a store that answers a
 * validly signed but older version of a directory than one a Tree has seen,
 * or no version at all, is refused with IntegrityError naming the storage
 * index, and the owner is told; the watermarks outlive the process through
 * the node's file.
 */

/** A slot store an attacker controls: it can answer a frozen old entry (or none) for one slot. */
class RollingBackSlotStore implements SlotStore {
  frozen = new Map<string, SlotEntry | undefined>();
  /** The next get reads now and answers this much later (a slow network), as an honest store may. */
  delayNextGetMs = 0;
  constructor(readonly inner: SlotStore) {}
  async get(si: Uint8Array): Promise<SlotEntry | undefined> {
    const key = Buffer.from(si).toString('hex');
    if (this.frozen.has(key)) return this.frozen.get(key);
    const delay = this.delayNextGetMs;
    this.delayNextGetMs = 0;
    const entry = await this.inner.get(si);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    return entry;
  }
  compareAndSwap(si: Uint8Array, expected: bigint | null, next: SlotEntry): Promise<void> {
    return this.inner.compareAndSwap(si, expected, next);
  }
  list(): AsyncIterable<Uint8Array> {
    return this.inner.list();
  }
  async close(): Promise<void> {}
}

const meta = { size: 0, mtimeMs: 0, ctimeMs: 0 };
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-rollback-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function snapshotOf(slots: SlotStore, cap: DirectoryWriteCap): Promise<SlotEntry> {
  return (await slots.get(cap.storageIndex))!;
}

describe('rollback detection', () => {
  it('refuses an older version, and a missing slot, once a newer one was seen; tells the owner', async () => {
    const chunks = new MemoryChunkStore();
    const slots = new RollingBackSlotStore(new MemorySlotStore());
    const rollbacks: SlotRollback[] = [];
    const tree = createTree({ chunks, slots, onRollback: (r) => rollbacks.push(r) });
    const cap = await tree.createDirectory();
    const d = tree.directory(cap);
    await d.mkdir('a');
    const old = await snapshotOf(slots.inner, cap);
    await d.mkdir('b');
    const key = Buffer.from(cap.storageIndex).toString('hex');

    slots.frozen.set(key, old);
    const err = await d.lookup('b').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).storageIndex).toBe(key);
    expect((err as Error).message).not.toMatch(/CS1:/);
    await expect(d.mkdir('c')).rejects.toBeInstanceOf(IntegrityError);
    slots.frozen.set(key, undefined);
    await expect(d.lookup('a')).rejects.toBeInstanceOf(IntegrityError);
    expect(rollbacks).toEqual([
      { storageIndex: key, seen: 3n, got: 2n },
      { storageIndex: key, seen: 3n, got: 2n },
      { storageIndex: key, seen: 3n, got: undefined },
    ]);

    // The store answering the truth again: all well.
    slots.frozen.delete(key);
    expect((await d.lookup('b'))?.name).toBe('b');

    // A Tree that never saw the newer version cannot tell (the limit the threat model states).
    const fresh = createTree({ chunks, slots });
    slots.frozen.set(key, old);
    expect(await fresh.directory(cap).lookup('b')).toBeUndefined();
    await tree.close();
    await fresh.close();
  });

  it('a read answered late, after a swap through the same Tree raised the watermark, is not a rollback', async () => {
    const slots = new RollingBackSlotStore(new MemorySlotStore());
    const rollbacks: SlotRollback[] = [];
    const tree = createTree({ chunks: new MemoryChunkStore(), slots, onRollback: (r) => rollbacks.push(r) });
    const cap = await tree.createDirectory();
    const d = tree.directory(cap);
    await d.mkdir('a');
    slots.delayNextGetMs = 100;
    const slowRead = d.lookup('a');
    await waitFor(() => slots.delayNextGetMs === 0); // the slow read has read the slot: its get took the delay
    await d.mkdir('b'); // swaps while the slow read's answer (the version before) is on its way
    expect((await slowRead)?.name).toBe('a');
    expect(rollbacks).toEqual([]);
    await tree.close();
  });

  it("keeps the node's watermarks across processes: a reopened file still refuses the rollback", async () => {
    const file = path.join(dir, 'store', 'slot-watermarks');
    const chunks = new MemoryChunkStore();
    const slots = new RollingBackSlotStore(new MemorySlotStore());
    let marks = await FileSlotWatermarks.open(file);
    let tree = createTree({ chunks, slots, watermarks: marks });
    const cap = await tree.createDirectory();
    await tree.directory(cap).mkdir('a');
    const old = await snapshotOf(slots.inner, cap);
    await tree.directory(cap).mkdir('b');
    await tree.close();
    await marks.close();
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    marks = await FileSlotWatermarks.open(file);
    tree = createTree({ chunks, slots, watermarks: marks });
    slots.frozen.set(Buffer.from(cap.storageIndex).toString('hex'), old);
    await expect(tree.directory(cap).list()[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(IntegrityError);
    await tree.close();
    await marks.close();

    // A torn last record (a crash mid-append) is skipped; the rest still counts.
    await writeFile(file, Buffer.concat([await readFile(file), randomBytes(17)]));
    marks = await FileSlotWatermarks.open(file);
    expect(marks.highest(cap.storageIndex)).toBe(3n);
    await marks.close();
  });

  it('the table holds many directories, keeps the highest seq each, and compacts its file', async () => {
    const memory = new MemorySlotWatermarks();
    const sis = Array.from({ length: 20_000 }, () => randomBytes(32));
    for (const [i, si] of sis.entries()) {
      memory.saw(si, BigInt(i + 5));
      memory.saw(si, BigInt(i + 1)); // lower: ignored
    }
    for (const [i, si] of sis.entries()) expect(memory.highest(si)).toBe(BigInt(i + 5));
    expect(memory.highest(randomBytes(32))).toBeUndefined();
    expect(memory.size).toBe(sis.length);

    const file = path.join(dir, 'marks');
    let marks = await FileSlotWatermarks.open(file);
    const few = sis.slice(0, 100);
    for (let seq = 1n; seq <= 300n; seq++) for (const si of few) marks.saw(si, seq);
    await marks.close();
    const before = (await stat(file)).size;
    expect(before).toBe(300 * 100 * 40);
    marks = await FileSlotWatermarks.open(file);
    expect((await stat(file)).size).toBe(100 * 40);
    for (const si of few) expect(marks.highest(si)).toBe(300n);
    await marks.close();
  });
});
