import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryVerifyCap, SymlinkTarget, type DirectoryWriteCap, type FileCap } from '../../src/cap/index.js';
import { markLive, sweep } from '../../src/node/gc.js';
import { checkCap } from '../../src/node/check.js';
import { FsChunkStore, MemoryChunkStore, MemorySlotStore } from '../../src/store/index.js';
import { createTree, type Tree } from '../../src/tree/index.js';

const CONVERGENCE = new Uint8Array(32).fill(3);
const HOUR = 3_600_000;
const meta = { size: 0, mtimeMs: 0, ctimeMs: 0 };

let dir: string;
let chunks: FsChunkStore;
let tree: Tree;
let slots: MemorySlotStore;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-gc-'));
  chunks = await FsChunkStore.open(dir, { fsync: false });
  slots = new MemorySlotStore();
  tree = createTree({ chunks, slots, chunkSize: 16 * 1024 });
});
afterEach(async () => {
  await tree.close();
  await rm(dir, { recursive: true, force: true });
});

async function upload(bytes: Uint8Array): Promise<FileCap> {
  const writer = tree.createFileWriter(CONVERGENCE);
  await writer.write(bytes);
  return (await writer.finish()).cap;
}

async function readAll(cap: FileCap): Promise<Buffer> {
  const reader = await tree.openFile(cap);
  return Buffer.from(await reader.read(0, reader.size));
}

/** Makes every stored chunk look `ms` old, as if put that long ago. */
async function ageAll(ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  for await (const address of chunks.list()) await utimes(chunks.chunkPath(address), when, when);
}

async function storedCount(): Promise<number> {
  let n = 0;
  for await (const _ of chunks.list()) n++;
  return n;
}

async function populate(): Promise<{ root: DirectoryWriteCap; keep: Map<string, Buffer> }> {
  const root = await tree.createDirectory();
  const sub = await tree.createDirectory();
  await tree.directory(root).link('sub', sub, meta);
  const keep = new Map<string, Buffer>();
  for (let i = 0; i < 40; i++) {
    const bytes = randomBytes(1000 + i * 1500);
    await tree.directory(i % 2 ? root : sub).link(`f${i}`, await upload(bytes), meta);
    keep.set(i % 2 ? `f${i}` : `sub/f${i}`, bytes);
  }
  // Garbage: files unlinked again, and a directory dropped.
  for (let i = 0; i < 5; i++) {
    await tree.directory(root).link(`gone${i}`, await upload(randomBytes(40_000)), meta);
    await tree.directory(root).unlink(`gone${i}`);
  }
  const dropped = await tree.createDirectory();
  await tree.directory(dropped).link('x', await upload(randomBytes(5000)), meta);
  return { root, keep };
}

async function expectIntact(root: DirectoryWriteCap, keep: Map<string, Buffer>): Promise<void> {
  for (const [p, bytes] of keep) {
    const node = await tree.resolve(root, p.split('/'));
    expect(node.type).toBe('file');
    expect((await readAll(node.cap as FileCap)).equals(bytes)).toBe(true);
  }
  const report = await checkCap(tree, chunks, root, { verify: true });
  expect(report.problems).toEqual([]);
}

describe('gc mark and sweep (fs store)', () => {
  it('keeps everything reachable (current directory versions only) and frees the rest once past the grace period', async () => {
    const { root, keep } = await populate();
    const before = await storedCount();
    const mark = await markLive(tree, [{ label: 'root', cap: root }]);
    expect(mark.problems).toEqual([]);
    expect(mark.directories).toBe(2);
    expect(mark.files).toBe(40);

    // Everything was just put: a day's grace keeps it all.
    const young = await sweep(chunks, mark.live, { graceMs: 24 * HOUR, dryRun: false });
    expect(young).toMatchObject({ stored: before, freed: 0, live: mark.live.size });
    expect(young.young).toBe(before - mark.live.size);
    // Garbage is more than the unlinked files: every old directory version.
    expect(young.young).toBeGreaterThan(5 * 3 + 40);

    await ageAll(25 * HOUR);
    const dry = await sweep(chunks, mark.live, { graceMs: 24 * HOUR, dryRun: true });
    expect(dry.freed).toBe(before - mark.live.size);
    expect(dry.freedBytes).toBeGreaterThan(5 * 40_000);
    expect(await storedCount()).toBe(before);

    const real = await sweep(chunks, mark.live, { graceMs: 24 * HOUR, dryRun: false });
    expect(real).toEqual(dry);
    expect(await storedCount()).toBe(mark.live.size);
    await expectIntact(root, keep);
    // A second run finds nothing more.
    expect((await sweep(chunks, (await markLive(tree, [{ label: 'root', cap: root }])).live, { graceMs: 0, dryRun: false })).freed).toBe(0);
  });

  it('an upload that deduplicates against old garbage refreshes its age, so gc keeps it (the put race)', async () => {
    const root = await tree.createDirectory();
    const bytes = randomBytes(50_000);
    await tree.directory(root).link('a', await upload(bytes), meta);
    await tree.directory(root).unlink('a');
    await ageAll(48 * HOUR);
    // The same bytes again: convergent, so every chunk already exists (old).
    const cap = await upload(bytes);
    const mark = await markLive(tree, [{ label: 'root', cap: root }]); // the upload is not linked yet
    const result = await sweep(chunks, mark.live, { graceMs: 24 * HOUR, dryRun: false });
    expect(result.freed).toBeGreaterThan(0); // old directory versions
    await tree.directory(root).link('a', cap, meta);
    expect((await readAll(cap)).equals(bytes)).toBe(true);
  });

  it('deleteIfIdleSince keeps a chunk touched by a put and a chunk moved aside by a crashed gc comes back at open', async () => {
    const address = await chunks.put(randomBytes(1000));
    const old = new Date(Date.now() - 2 * HOUR);
    await utimes(chunks.chunkPath(address), old, old);
    expect(await chunks.deleteIfIdleSince(address, Date.now() - 3 * HOUR)).toBeUndefined();
    expect(await chunks.has(address)).toBe(true);
    expect(await chunks.deleteIfIdleSince(address, Date.now() - HOUR)).toBe(1000);
    expect(await chunks.has(address)).toBe(false);

    const again = await chunks.put(randomBytes(2000));
    const file = chunks.chunkPath(again);
    const { rename } = await import('node:fs/promises');
    await rename(file, path.join(dir, 'tmp', `gc.${again.toString()}.1.abc`));
    await writeFile(path.join(dir, 'tmp', 'gc.garbage'), 'x');
    await FsChunkStore.open(dir, { fsync: false });
    expect(await chunks.has(again)).toBe(true);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect((await stat(file)).size).toBe(2000);
  });

  it('refuses to sweep when the walk has gaps: missing node, verify-only directory', async () => {
    const root = await tree.createDirectory();
    const sub = await tree.createDirectory();
    await tree.directory(sub).link('f', await upload(randomBytes(3000)), meta);
    await tree.directory(root).link('sub', sub, meta);
    await tree.directory(root).link('v', new DirectoryVerifyCap(sub.publicKey), meta);
    const withVerify = await markLive(tree, [{ label: 'root', cap: root }]);
    expect(withVerify.problems.map((p) => p.path)).toEqual(['root/v']);

    await tree.directory(root).unlink('v');
    let node: { address: string } | undefined;
    for await (const n of tree.directory(sub).nodes()) node ??= n;
    await rm(chunks.chunkPath((await import('../../src/store/index.js')).parseAddress(node!.address)));
    // A fresh tree: the first one has the node in its cache.
    const gap = await markLive(createTree({ chunks, slots }), [{ label: 'root', cap: root }]);
    expect(gap.problems).toEqual([{ path: 'root/sub', detail: 'directory unreadable: NotFoundError' }]);
  });

  it('a symbolic link holds no data: no problem for mark or check, and nothing is followed through it', async () => {
    const root = await tree.createDirectory();
    const file = await upload(randomBytes(3000));
    await tree.directory(root).link('f', file, meta);
    await tree.directory(root).link('l', new SymlinkTarget(Buffer.from('f')), meta);
    await tree.directory(root).link('loop', new SymlinkTarget(Buffer.from('loop')), meta);
    const mark = await markLive(tree, [{ label: 'root', cap: root }]);
    expect(mark.problems).toEqual([]);
    const report = await checkCap(tree, chunks, root);
    expect(report.problems).toEqual([]);
    expect(report.unknown).toBe(0);
    expect(report.files).toBe(1);
  });

  it('sweep refuses a store that cannot tell ages', async () => {
    const memory = new MemoryChunkStore();
    await expect(sweep(memory, new Set(), { graceMs: 0, dryRun: true })).rejects.toMatchObject({ name: 'InvalidInputError' });
  });
  it('report progress as they go: the mark per file and directory, the sweep per chunk, check --verify by bytes', async () => {
    const { root } = await populate();
    const marks: number[] = [];
    const mark = await markLive(tree, [{ label: 'root', cap: root }], {
      onProgress: (m) => marks.push(m.directories + m.files),
    });
    expect(marks.length).toBe(mark.directories + mark.files);
    expect(marks.at(-1)).toBe(mark.directories + mark.files);
    expect([...marks].sort((a, b) => a - b)).toEqual(marks);

    const listed: number[] = [];
    const result = await sweep(chunks, mark.live, { graceMs: 24 * HOUR, dryRun: true, onProgress: (r) => listed.push(r.stored) });
    expect(listed).toEqual(Array.from({ length: result.stored }, (_, i) => i + 1));

    let lastBytes = 0;
    let calls = 0;
    const report = await checkCap(tree, chunks, root, {
      verify: true,
      onProgress: (r) => {
        expect(r.bytes).toBeGreaterThanOrEqual(lastBytes);
        lastBytes = r.bytes;
        calls++;
      },
    });
    expect(calls).toBeGreaterThanOrEqual(report.chunks + report.files + report.directories);
    expect(report.bytes).toBe(lastBytes);
    // Every data chunk was read back: at least the plaintext of the 40 files.
    expect(report.bytes).toBeGreaterThan(40 * 1000 + (1500 * (39 * 40)) / 2);
    expect((await checkCap(tree, chunks, root)).bytes).toBe(0);
  });
});
