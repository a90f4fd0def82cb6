import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryReadCap, DirectoryWriteCap, FileReadCap, LiteralCap, UnknownCap } from '../../src/cap/index.js';
import { convergenceSecret, randomBytes } from '../../src/crypto/index.js';
import { FsChunkStore } from '../../src/store/fs-chunk-store.js';
import { LevelSlotStore } from '../../src/store/level-slot-store.js';
import { MemoryChunkStore } from '../../src/store/memory-chunk-store.js';
import { MemorySlotStore } from '../../src/store/memory-slot-store.js';
import type { EntryMetadata, Tree } from '../../src/tree/api.js';
import { createTree, MIN_CHUNK_SIZE, moveEntry } from '../../src/tree/index.js';

const meta = (size = 0): EntryMetadata => ({ size, mtimeMs: 1, ctimeMs: 1 });
const rejectsNamed = (p: Promise<unknown>, name: string) => expect(p).rejects.toMatchObject({ name });
const convergence = convergenceSecret(new Uint8Array(32).fill(7), 'per-account', 'alice');

async function upload(tree: Tree, bytes: Uint8Array) {
  const writer = tree.createFileWriter(convergence);
  await writer.write(bytes);
  return writer.finish();
}

describe('Tree facade', () => {
  let tree: Tree;
  let root: DirectoryWriteCap;
  let slots: MemorySlotStore;

  beforeEach(async () => {
    slots = new MemorySlotStore();
    tree = createTree({ chunks: new MemoryChunkStore(), slots, chunkSize: MIN_CHUNK_SIZE });
    root = await tree.createDirectory();
  });
  afterEach(async () => {
    await tree.close();
  });

  it('createDirectory makes an empty directory at slot seq 1 with a fresh write cap', async () => {
    expect(root).toBeInstanceOf(DirectoryWriteCap);
    expect((await slots.get(root.storageIndex))!.seq).toBe(1n);
    const other = await tree.createDirectory();
    expect(other.toString()).not.toBe(root.toString());
    expect(await tree.directory(root).count()).toBe(0);
  });

  it('directory() refuses caps that cannot read a directory', () => {
    expect(() => tree.directory(root.verifier() as never)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
    expect(() => tree.directory(new LiteralCap(new Uint8Array(1)) as never)).toThrow(
      expect.objectContaining({ name: 'InvalidInputError' }),
    );
  });

  it('resolve walks components to directories, files and unknown caps', async () => {
    const a = await tree.directory(root).mkdir('a');
    const b = await tree.directory(a).mkdir('b');
    const data = randomBytes(3 * MIN_CHUNK_SIZE + 17);
    const { cap } = await upload(tree, data);
    await tree.directory(b).link('file.bin', cap, meta(data.length));
    await tree.directory(b).link('future', new UnknownCap('URI:NEW:thing'), meta());

    expect(await tree.resolve(root, [])).toEqual({ type: 'directory', cap: root });
    const dirNode = await tree.resolve(root, ['a', 'b']);
    expect(dirNode.type).toBe('directory');
    expect(dirNode.cap.toString()).toBe(b.toString());
    expect(dirNode.entry?.name).toBe('b');

    const fileNode = await tree.resolve(root, ['a', 'b', 'file.bin']);
    expect(fileNode.type).toBe('file');
    expect(fileNode.cap).toBeInstanceOf(FileReadCap);
    expect(fileNode.entry?.metadata.size).toBe(data.length);
    const reader = await tree.openFile(fileNode.cap as FileReadCap);
    expect(reader.size).toBe(data.length);
    expect(Buffer.from(await reader.read(0, data.length)).equals(Buffer.from(data))).toBe(true);

    expect((await tree.resolve(root, ['a', 'b', 'future'])).type).toBe('unknown');
  });

  it('resolve: a missing component is NotFoundError, walking through a file is NotADirectoryError', async () => {
    const a = await tree.directory(root).mkdir('a');
    const { cap } = await upload(tree, new TextEncoder().encode('tiny'));
    await tree.directory(a).link('f', cap, meta(4));
    await rejectsNamed(tree.resolve(root, ['nope']), 'NotFoundError');
    await rejectsNamed(tree.resolve(root, ['a', 'nope', 'x']), 'NotFoundError');
    await rejectsNamed(tree.resolve(root, ['a', 'f', 'x']), 'NotADirectoryError');
    await rejectsNamed(tree.resolve(root, ['a', '..']), 'InvalidInputError');
    await tree.directory(a).link('v', new DirectoryWriteCap(randomBytes(32)).verifier(), meta());
    await rejectsNamed(tree.resolve(root, ['a', 'v', 'x']), 'PermissionError');
    expect((await tree.resolve(root, ['a', 'v'])).type).toBe('unknown');
  });

  it('resolve takes components byte for byte (an NFD path does not find NFC entries)', async () => {
    const sub = await tree.directory(root).mkdir('R\u00e9sum\u00e9s');
    await tree.directory(sub).link('caf\u00e9', new LiteralCap(new Uint8Array([1])), meta(1));
    const node = await tree.resolve(root, ['R\u00e9sum\u00e9s', 'caf\u00e9']);
    expect(node.type).toBe('file');
    expect(node.entry?.name).toBe('caf\u00e9');
    await expect(tree.resolve(root, ['Re\u0301sume\u0301s', 'cafe\u0301'])).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('from a read cap, every directory below resolves to a read cap', async () => {
    const a = await tree.directory(root).mkdir('a');
    await tree.directory(a).mkdir('b');
    const node = await tree.resolve(root.readonly(), ['a', 'b']);
    expect(node.cap).toBeInstanceOf(DirectoryReadCap);
    expect(node.cap.isWritable).toBe(false);
    await rejectsNamed(
      tree.directory(node.cap as DirectoryReadCap).link('x', new LiteralCap(new Uint8Array(0)), meta()),
      'PermissionError',
    );
    // From the write cap, the same path gives write caps.
    expect((await tree.resolve(root, ['a', 'b'])).cap).toBeInstanceOf(DirectoryWriteCap);
  });

  it('files: small ones become literal caps, and fileChunks lists a file from its read or verify cap', async () => {
    const small = await upload(tree, new TextEncoder().encode('hi'));
    expect(small.cap).toBeInstanceOf(LiteralCap);
    expect(await tree.fileChunks(small.cap)).toBeUndefined();
    const data = randomBytes(2 * MIN_CHUNK_SIZE + 1);
    const big = await upload(tree, data);
    expect(big.checksums.sha256).toEqual(new Uint8Array(createHash('sha256').update(data).digest()));
    const list = await tree.fileChunks(big.cap);
    expect(list?.chunks.length).toBe(3);
    const viaVerify = await tree.fileChunks((big.cap as FileReadCap).verifier());
    expect(viaVerify?.manifest.toString()).toBe(list?.manifest.toString());
  });

  it('moveEntry moves between directories (link, then unlink) and renames within one', async () => {
    const a = tree.directory(await tree.directory(root).mkdir('a'));
    const b = tree.directory(await tree.directory(root).mkdir('b'));
    const cap = new LiteralCap(new Uint8Array([9]));
    await a.link('x', cap, meta(1));
    await moveEntry(a, 'x', b, 'y');
    expect(await a.lookup('x')).toBeUndefined();
    expect((await b.lookup('y'))?.cap.toString()).toBe(cap.toString());
    await moveEntry(b, 'y', b, 'z');
    expect((await b.lookup('z'))?.cap.toString()).toBe(cap.toString());
    await b.link('w', cap, meta(1));
    await a.link('w', new LiteralCap(new Uint8Array([1])), meta(1));
    await rejectsNamed(moveEntry(b, 'w', a, 'w'), 'AlreadyExistsError');
    expect(await b.lookup('w')).toBeDefined();
    await moveEntry(b, 'w', a, 'w', { overwrite: true });
    expect(await b.lookup('w')).toBeUndefined();
    await rejectsNamed(moveEntry(b, 'missing', a, 'm'), 'NotFoundError');
  });

  it('moveEntry of a subdirectory keeps its write cap; from a read-only source it refuses before copying', async () => {
    const a = tree.directory(await tree.directory(root).mkdir('a'));
    const b = tree.directory(await tree.directory(root).mkdir('b'));
    const sub = await a.mkdir('sub');
    await moveEntry(a, 'sub', b, 'sub');
    expect((await b.lookup('sub'))?.cap.toString()).toBe(sub.toString());
    const roB = tree.directory((b.cap as DirectoryWriteCap).readonly());
    await rejectsNamed(moveEntry(roB, 'sub', a, 'sub'), 'PermissionError');
    expect(await a.lookup('sub')).toBeUndefined();
  });
});

describe('Tree facade on FsChunkStore + LevelSlotStore', () => {
  it('a tree written by one Tree is read back by a fresh one after the stores are reopened', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-tree-'));
    try {
      let chunks = await FsChunkStore.open(path.join(dir, 'chunks'));
      let slots = await LevelSlotStore.open(path.join(dir, 'slots'));
      let tree = createTree({ chunks, slots });
      const root = await tree.createDirectory();
      const docs = await tree.directory(root).mkdir('docs');
      const { cap } = await upload(tree, randomBytes(100_000));
      await tree.directory(docs).link('blob', cap, meta(100_000));
      await tree.close();
      await slots.close();
      await chunks.close();

      chunks = await FsChunkStore.open(path.join(dir, 'chunks'));
      slots = await LevelSlotStore.open(path.join(dir, 'slots'));
      tree = createTree({ chunks, slots });
      try {
        const node = await tree.resolve(root.readonly(), ['docs', 'blob']);
        expect(node.type).toBe('file');
        expect((await tree.openFile(node.cap as FileReadCap)).size).toBe(100_000);
      } finally {
        await tree.close();
        await slots.close();
        await chunks.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
