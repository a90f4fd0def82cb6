import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryWriteCap, FileReadCap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import type { ChunkAddress } from '../../src/store/chunks/chunk-store.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { LevelSlotStore } from '../../src/store/slots/level.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { storageIndexHex } from '../../src/store/slots/slot-limits.js';
import type { Directory, EntryMetadata, Tree } from '../../src/tree/api.js';
import { DirectoryKeys } from '../../src/tree/dir/keys.js';
import { encodeNode, openNode, sealNode } from '../../src/tree/dir/node-format.js';
import { encodeSlotRecord, verifySlotRecord } from '../../src/tree/dir/slot-record.js';
import { createTree } from '../../src/tree/index.js';

const meta: EntryMetadata = { size: 1, mtimeMs: 1, ctimeMs: 1 };
const fileCap = (): FileReadCap => new FileReadCap(randomBytes(32), randomBytes(32), 1);

async function drain(dir: Directory): Promise<number> {
  let n = 0;
  for await (const _ of dir.list()) n++;
  return n;
}

/** The raw bytes MemoryChunkStore holds for an address (tests reach in to simulate rot, as its doc says). */
function flip(bytes: Uint8Array, at: number, mask: number): void {
  bytes[at] = (bytes[at] ?? 0) ^ mask;
}

function rawChunk(store: MemoryChunkStore, address: ChunkAddress): Uint8Array {
  return (store as unknown as { chunks: Map<string, Uint8Array> }).chunks.get(address.toString())!;
}

describe('tampering with a directory is IntegrityError, never a crash or wrong data', () => {
  let chunks: MemoryChunkStore;
  let slots: MemorySlotStore;
  let tree: Tree;
  let cap: DirectoryWriteCap;
  let dir: Directory;
  let si: Uint8Array;
  let siHex: string;

  const current = async () => {
    const entry = (await slots.get(si))!;
    return { entry, version: verifySlotRecord(cap.publicKey, siHex, entry) };
  };
  /** Puts `record` as the slot's next version, as a misbehaving store (or a writer) could. */
  const replaceRecord = async (record: Uint8Array, seqDelta = 1n) => {
    const entry = (await slots.get(si))!;
    await slots.compareAndSwap(si, entry.seq, { seq: entry.seq + seqDelta, record });
  };
  const expectSlotIntegrityError = async () => {
    // A fresh Tree: nothing cached.
    const fresh = createTree({ chunks, slots });
    for (const attempt of [
      () => fresh.directory(cap).count(),
      () => fresh.directory(cap.readonly()).lookup('a'),
      () => drain(fresh.directory(cap)),
    ]) {
      await expect(attempt()).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: siHex });
    }
    await expect(fresh.directory(cap).link('z', fileCap(), meta)).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: siHex });
  };

  beforeEach(async () => {
    chunks = new MemoryChunkStore();
    slots = new MemorySlotStore();
    tree = createTree({ chunks, slots });
    cap = await tree.createDirectory();
    dir = tree.directory(cap);
    si = cap.storageIndex;
    siHex = storageIndexHex(si);
    for (const name of ['a', 'b', 'c']) await dir.link(name, fileCap(), meta);
  });
  afterEach(async () => {
    await tree.close();
  });

  it('a branch whose count for a child disagrees with that child is IntegrityError, with the child cached or not', async () => {
    const names = Array.from({ length: 100 }, (_, i) => `n${i}`);
    for (const name of names) await dir.link(name, fileCap(), meta);
    const keys = DirectoryKeys.of(cap);
    const { version } = await current();
    const root = openNode(keys, version.root, await chunks.get(version.root)).node;
    if (root.kind !== 'branch') throw new Error('expected a branch root');
    // A writer's lie: the same children, one of them said to hold one entry more than it does.
    const lied = root.children.findIndex((c) => c.count > 0);
    const children = root.children.map((c, i) => (i === lied ? { ...c, count: c.count + 1 } : c));
    const forged = await chunks.put(sealNode(keys, encodeNode({ ...root, children }), randomBytes(24)));
    await replaceRecord(encodeSlotRecord(cap.signingKey, si, { ...version, seq: version.seq + 1n, root: forged }));
    // `tree` has every child cached (it wrote them); a fresh Tree reads them from the store.
    const uncached = createTree({ chunks, slots });
    try {
      for (const view of [tree, uncached]) {
        await expect(drain(view.directory(cap))).rejects.toMatchObject({ name: 'IntegrityError' });
        const outcomes = await Promise.allSettled(names.map((name) => view.directory(cap).lookup(name)));
        const refused = outcomes.filter((o) => o.status === 'rejected');
        expect(refused.length).toBeGreaterThan(0);
        for (const o of refused) expect((o as PromiseRejectedResult).reason).toMatchObject({ name: 'IntegrityError' });
        // Names under the other children still resolve, to what was linked.
        for (const o of outcomes) if (o.status === 'fulfilled') expect(o.value?.metadata).toEqual(meta);
      }
    } finally {
      await uncached.close();
    }
  });

  it('a Tree that verified the slot before verifies a changed record again (the verified-record cache)', async () => {
    expect(await dir.count()).toBe(3);
    const { entry } = await current();
    const forged = new Uint8Array(entry.record);
    flip(forged, forged.length - 1, 0x01);
    await replaceRecord(forged);
    await expect(dir.count()).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: siHex });
    // The genuine bytes under another seq: the record names its own seq.
    await replaceRecord(entry.record);
    await expect(dir.lookup('a')).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: siHex });
  });

  it('a flipped byte in a stored node blob fails list and lookup', async () => {
    const { version } = await current();
    flip(rawChunk(chunks, version.root), 40, 0x01);
    const fresh = createTree({ chunks, slots });
    await expect(drain(fresh.directory(cap))).rejects.toMatchObject({ name: 'IntegrityError' });
    await expect(fresh.directory(cap).lookup('a')).rejects.toMatchObject({ name: 'IntegrityError' });
  });

  it('a node whose address matches but whose ciphertext was altered (re-signed slot) fails its AEAD tag', async () => {
    const { version } = await current();
    const blob = await chunks.get(version.root);
    flip(blob, blob.length - 1, 0x80);
    const forged = await chunks.put(blob);
    await replaceRecord(
      encodeSlotRecord(cap.signingKey, si, { seq: (await current()).entry.seq + 1n, root: forged, sealed: false, shared: false }),
    );
    const fresh = createTree({ chunks, slots });
    await expect(fresh.directory(cap).lookup('a')).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: forged.toString() });
    await expect(drain(fresh.directory(cap.readonly()))).rejects.toMatchObject({ name: 'IntegrityError' });
  });

  it("a slot pointed at another directory's node fails, even with that node cached in the same Tree", async () => {
    const other = await tree.createDirectory();
    await tree.directory(other).link('secret', fileCap(), meta);
    // Cache the other directory's root in this Tree.
    expect(await tree.directory(other).count()).toBe(1);
    const otherRoot = verifySlotRecord(other.publicKey, storageIndexHex(other.storageIndex), (await slots.get(other.storageIndex))!).root;
    await replaceRecord(
      encodeSlotRecord(cap.signingKey, si, { seq: (await current()).entry.seq + 1n, root: otherRoot, sealed: false, shared: false }),
    );
    await expect(dir.lookup('secret')).rejects.toMatchObject({ name: 'IntegrityError' });
    await expect(drain(dir)).rejects.toMatchObject({ name: 'IntegrityError' });
  });

  it('a flipped seq in the record', async () => {
    const record = (await current()).entry.record.slice();
    flip(record, 1 + 32 + 7, 0x01);
    await replaceRecord(record);
    await expectSlotIntegrityError();
  });

  it('a record whose seq does not match the entry seq (a store relabelling an old record as new)', async () => {
    await replaceRecord((await current()).entry.record.slice());
    await expectSlotIntegrityError();
  });

  it('a flipped byte in the root address', async () => {
    const record = (await current()).entry.record.slice();
    flip(record, 1 + 32 + 8 + 1 + 10, 0x01);
    await replaceRecord(record);
    await expectSlotIntegrityError();
  });

  it('a flipped signature byte', async () => {
    const record = (await current()).entry.record.slice();
    flip(record, record.length - 5, 0x01);
    await replaceRecord(record);
    await expectSlotIntegrityError();
  });

  it('a flipped storage index byte, a wrong version byte, a truncated record, garbage', async () => {
    const good = (await current()).entry.record;
    const variants = [
      (() => {
        const r = good.slice();
        flip(r, 5, 0x01);
        return r;
      })(),
      (() => {
        const r = good.slice();
        r[0] = 2;
        return r;
      })(),
      good.slice(0, good.length - 1),
      good.slice(0, 10),
      new Uint8Array(0),
      randomBytes(good.length),
    ];
    for (const record of variants) {
      await replaceRecord(record);
      await expectSlotIntegrityError();
    }
  });

  it('a record signed by a different key', async () => {
    const { entry, version } = await current();
    const impostor = new DirectoryWriteCap(randomBytes(32));
    // Claims this directory's SI, signed by someone else.
    await replaceRecord(
      encodeSlotRecord(impostor.signingKey, si, { seq: entry.seq + 1n, root: version.root, sealed: false, shared: false }),
    );
    await expectSlotIntegrityError();
  });

  it("another directory's valid record copied into this slot", async () => {
    const other = await tree.createDirectory();
    const theirs = (await slots.get(other.storageIndex))!;
    const { entry } = await current();
    await slots.compareAndSwap(si, entry.seq, { seq: theirs.seq > entry.seq ? theirs.seq : entry.seq + 1n, record: theirs.record });
    await expectSlotIntegrityError();
  });
});

describe('tampering on FsChunkStore + LevelSlotStore', () => {
  let root: string;
  let chunks: FsChunkStore;
  let slots: LevelSlotStore;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'capstan-dir-tamper-'));
    chunks = await FsChunkStore.open(path.join(root, 'chunks'));
    slots = await LevelSlotStore.open(path.join(root, 'slots'));
  });
  afterEach(async () => {
    await slots.close();
    await chunks.close();
    await rm(root, { recursive: true, force: true });
  });

  it('a flipped byte in a node file fails list and lookup', async () => {
    const tree = createTree({ chunks, slots });
    const cap = await tree.createDirectory();
    // Enough entries for a branch, so the flipped node is a bucket below the root.
    for (let i = 0; i < 100; i++) await tree.directory(cap).link(`n${i}`, fileCap(), meta);
    const siHex = storageIndexHex(cap.storageIndex);
    const rootAddress = verifySlotRecord(cap.publicKey, siHex, (await slots.get(cap.storageIndex))!).root;
    const file = chunks.chunkPath(rootAddress);
    const bytes = await readFile(file);
    flip(bytes, bytes.length - 20, 0x04);
    await writeFile(file, bytes);
    const fresh = createTree({ chunks, slots });
    await expect(drain(fresh.directory(cap))).rejects.toMatchObject({ name: 'IntegrityError' });
    await expect(fresh.directory(cap).lookup('n1')).rejects.toMatchObject({ name: 'IntegrityError' });
    await expect(fresh.directory(cap).count()).rejects.toMatchObject({ name: 'IntegrityError' });
  });
});
