import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileReadCap, LiteralCap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import type { ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import type { FileReader } from '../../src/tree/api.js';
import { manifestAddressOf } from '../../src/tree/file/format.js';
import { DEFAULT_CHUNK_SIZE, createFileWriter, fileChunks, openFile, uploadBytes } from '../../src/tree/file/index.js';

const CHUNK = 4096;
const convergence = new Uint8Array(32).fill(0x42);

/** Deterministic, non-repeating content (so chunks do not dedupe by accident). */
function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function readAll(reader: FileReader, start?: number, end?: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of reader.stream(start, end)) parts.push(part);
  return Buffer.concat(parts);
}

const digest = (algorithm: string, data: Uint8Array): string => createHash(algorithm).update(data).digest('hex');
const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString('hex');

const backends: { name: string; open: () => Promise<ChunkStore>; cleanup: () => Promise<void> }[] = [];
let fsRoot: string;
beforeAll(async () => {
  fsRoot = await mkdtemp(path.join(tmpdir(), 'capstan-file-test-'));
});
afterAll(async () => {
  await rm(fsRoot, { recursive: true, force: true });
});
backends.push(
  { name: 'MemoryChunkStore', open: async () => new MemoryChunkStore(), cleanup: async () => undefined },
  {
    name: 'FsChunkStore',
    open: async () => FsChunkStore.open(await mkdtemp(path.join(fsRoot, 'store-')), { fsync: false }),
    cleanup: async () => undefined,
  },
);

describe.each(backends)('immutable files on $name', ({ open }) => {
  let store: ChunkStore;
  beforeAll(async () => {
    store = await open();
  });

  const sizes = [0, 1, 64, 65, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 123];
  it.each(sizes)('round-trips %i bytes, in odd-sized writes', async (size) => {
    const data = pattern(size, size);
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK });
    for (let offset = 0; offset < size; offset += 1000) await writer.write(data.subarray(offset, offset + 1000));
    expect(writer.size).toBe(size);
    const result = await writer.finish();
    expect(result.size).toBe(size);
    if (size <= 64) expect(result.cap).toBeInstanceOf(LiteralCap);
    else expect(result.cap).toBeInstanceOf(FileReadCap);
    expect(result.cap.size).toBe(size);

    const reader = await openFile(store, result.cap);
    expect(reader.size).toBe(size);
    expect(hex(await reader.read(0, size + 10))).toBe(hex(data));
    expect(hex(await readAll(reader))).toBe(hex(data));
    for (const sums of [result.checksums, await reader.checksums()]) {
      expect(hex(sums.sha256)).toBe(digest('sha256', data));
      expect(hex(sums.md5)).toBe(digest('md5', data));
      expect(hex(sums.sha1)).toBe(digest('sha1', data));
    }
  });

  it('reads ranges at and across chunk boundaries, and past the end', async () => {
    const size = 5 * CHUNK + 500;
    const data = Buffer.from(pattern(size, 7));
    const { cap } = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    const reader = await openFile(store, cap);
    const offsets = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 5 * CHUNK, size - 1, size, size + 1, size + CHUNK];
    const lengths = [0, 1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7, size + 100];
    for (const offset of offsets) {
      for (const length of lengths) {
        const expected = data.subarray(Math.min(offset, size), Math.min(offset + length, size));
        expect(hex(await reader.read(offset, length)), `read(${offset}, ${length})`).toBe(hex(expected));
        const end = offset + length;
        expect(hex(await readAll(reader, offset, end)), `stream(${offset}, ${end})`).toBe(hex(expected));
        // readInto: the same bytes at the start of the caller's buffer, the rest untouched.
        const target = Buffer.alloc(length + 3, 0xee);
        const n = await reader.readInto(offset, target.subarray(0, length));
        expect(n, `readInto(${offset}, ${length})`).toBe(expected.length);
        expect(hex(target.subarray(0, n))).toBe(hex(expected));
        expect(target.subarray(n).every((b) => b === 0xee)).toBe(true);
      }
    }
  });

  it('a smaller checksum set: a literal upload reports only those digests too; every reader still answers all three', async () => {
    for (const data of [Buffer.from('tiny'), Buffer.from(pattern(3 * CHUNK + 5, 4))]) {
      const result = await uploadBytes(store, convergence, data, { chunkSize: CHUNK, checksums: ['sha1', 'sha256'] });
      expect(Object.keys(result.checksums).sort()).toEqual(['sha1', 'sha256']);
      const reader = await openFile(store, result.cap);
      for (const algo of ['sha256', 'md5', 'sha1'] as const) expect(hex(await reader.checksum(algo))).toBe(digest(algo, data));
    }
    await expect(uploadBytes(store, convergence, Buffer.from('x'), { checksums: ['md5'] })).rejects.toThrow(RangeError);
  });

  it('readInto of a literal file, and into a buffer the caller then reuses', async () => {
    const small = Buffer.from('literal bytes');
    const literal = await openFile(store, (await uploadBytes(store, convergence, small)).cap);
    const target = Buffer.alloc(20);
    expect(await literal.readInto(8, target)).toBe(5);
    expect(target.subarray(0, 5).toString()).toBe('bytes');
    expect(await literal.readInto(13, target)).toBe(0);
    const data = Buffer.from(pattern(2 * CHUNK, 3));
    const reader = await openFile(store, (await uploadBytes(store, convergence, data, { chunkSize: CHUNK })).cap);
    const reused = Buffer.alloc(100);
    await reader.readInto(10, reused);
    reused.fill(0);
    await reader.readInto(10, reused);
    expect(hex(reused)).toBe(hex(data.subarray(10, 110)));
  });

  it('answers random ranges like a Buffer does', async () => {
    const size = 3 * CHUNK + 77;
    const data = Buffer.from(pattern(size, 9));
    const { cap } = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    const reader = await openFile(store, cap);
    await fc.assert(
      fc.asyncProperty(fc.nat(size + 50), fc.nat(size + 50), async (offset, length) => {
        const expected = data.subarray(Math.min(offset, size), Math.min(offset + length, size));
        expect(Buffer.from(await reader.read(offset, length)).equals(expected)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('serves concurrent reads of one reader', async () => {
    const size = 8 * CHUNK;
    const data = Buffer.from(pattern(size, 11));
    const { cap } = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    const reader = await openFile(store, cap);
    const reads = Array.from({ length: 64 }, (_, i) => (i * 997) % size);
    const results = await Promise.all(reads.map((offset) => reader.read(offset, 1500)));
    for (const [i, bytes] of results.entries()) expect(Buffer.from(bytes).equals(data.subarray(reads[i], reads[i]! + 1500))).toBe(true);
  });

  it('deduplicates identical files in one convergence domain, and only there', async () => {
    const data = pattern(3 * CHUNK + 10, 21);
    const first = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    const before = await store.usage!();
    const second = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    expect(second.cap.toString()).toBe(first.cap.toString());
    expect(await store.usage!()).toEqual(before);

    const other = await uploadBytes(store, new Uint8Array(32).fill(0x43), data, { chunkSize: CHUNK });
    expect(other.cap.toString()).not.toBe(first.cap.toString());
    expect((await store.usage!()).chunks).toBe(before.chunks + 5); // 4 chunks + 1 manifest, nothing shared

    // The chunk size is part of the file's identity (K covers it): another size, another cap.
    const resized = await uploadBytes(store, convergence, data, { chunkSize: 2 * CHUNK });
    expect(resized.cap.toString()).not.toBe(first.cap.toString());
  });

  it('stores identical chunks of one file once', async () => {
    const block = pattern(CHUNK, 31);
    const data = Buffer.concat([block, block, block, block, pattern(100, 32)]);
    const before = (await store.usage!()).chunks;
    const { cap } = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    expect((await store.usage!()).chunks).toBe(before + 3); // the block, the tail, the manifest
    const list = (await fileChunks(store, cap as FileReadCap))!;
    expect(list.chunks.map(String)).toEqual([...Array(4).fill(list.chunks[0]!.toString()), list.chunks[4]!.toString()]);
    expect(hex(await readAll(await openFile(store, cap)))).toBe(hex(data));
  });

  it('lists the same chunks from the verify cap as from the read cap', async () => {
    const data = pattern(4 * CHUNK + 1, 41);
    const { cap } = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    const readCap = cap as FileReadCap;
    const fromRead = (await fileChunks(store, readCap))!;
    const fromVerify = (await fileChunks(store, readCap.verifier()))!;
    expect(fromVerify.manifest.toString()).toBe(manifestAddressOf(readCap.manifestHash).toString());
    expect(fromVerify.manifest.toString()).toBe(fromRead.manifest.toString());
    expect(fromVerify.chunks.map(String)).toEqual(fromRead.chunks.map(String));
    expect(fromVerify.chunks).toHaveLength(5);
    for (const address of [fromVerify.manifest, ...fromVerify.chunks]) expect(await store.has(address)).toBe(true);
    expect(await fileChunks(store, new LiteralCap(new Uint8Array(3)))).toBeUndefined();
  });
});

describe('defaults', () => {
  it('uses DEFAULT_CHUNK_SIZE when none is given', async () => {
    const store = new MemoryChunkStore();
    const data = pattern(DEFAULT_CHUNK_SIZE + 1, 3);
    const { cap } = await uploadBytes(store, convergence, data);
    expect((await fileChunks(store, cap as FileReadCap))!.chunks).toHaveLength(2);
  });

  it('refuses bad parameters', () => {
    const store = new MemoryChunkStore();
    expect(() => createFileWriter(store, new Uint8Array(16))).toThrow(RangeError);
    expect(() => createFileWriter(store, convergence, { chunkSize: 1000 })).toThrow(RangeError);
    expect(() => createFileWriter(store, convergence, { concurrency: 0 })).toThrow(RangeError);
  });

  it('rejects negative or fractional read ranges with InvalidInputError', async () => {
    const store = new MemoryChunkStore();
    const { cap } = await uploadBytes(store, convergence, pattern(100));
    const reader = await openFile(store, cap);
    await expect(reader.read(-1, 10)).rejects.toHaveProperty('name', 'InvalidInputError');
    await expect(reader.read(0, 1.5)).rejects.toHaveProperty('name', 'InvalidInputError');
    await expect(reader.read(0, 65 * 1024 * 1024)).resolves.toHaveLength(100);
  });

  it('gives every caller its own bytes', async () => {
    const store = new MemoryChunkStore();
    const data = pattern(2 * CHUNK, 5);
    const { cap } = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    const reader = await openFile(store, cap);
    const first = await reader.read(0, 10);
    first.fill(0);
    expect(hex(await reader.read(0, 10))).toBe(hex(data.subarray(0, 10)));
    const sums = await reader.checksums();
    sums.sha256.fill(0);
    expect(hex((await reader.checksums()).sha256)).toBe(digest('sha256', data));
  });
});

describe('chunk fetches', () => {
  /** Counts get() per address on a real MemoryChunkStore. */
  function countingStore(): { store: ChunkStore; gets: Map<string, number> } {
    const inner = new MemoryChunkStore();
    const gets = new Map<string, number>();
    const store = Object.assign(Object.create(inner) as MemoryChunkStore, {
      get: async (address: Parameters<ChunkStore['get']>[0]) => {
        gets.set(address.toString(), (gets.get(address.toString()) ?? 0) + 1);
        return inner.get(address);
      },
      put: (bytes: Uint8Array) => inner.put(bytes),
    });
    return { store, gets };
  }

  it('touches only the chunks holding the range, and caches them', async () => {
    const { store, gets } = countingStore();
    const { cap } = await uploadBytes(store, convergence, pattern(6 * CHUNK, 51), { chunkSize: CHUNK });
    const chunks = (await fileChunks(store, cap as FileReadCap))!.chunks.map(String);
    gets.clear();
    const reader = await openFile(store, cap);
    gets.clear();
    await reader.read(2 * CHUNK + 10, 100);
    await reader.read(2 * CHUNK + 500, 100); // not sequential: no read-ahead
    await reader.read(2 * CHUNK + 5, 10);
    expect([...gets.entries()]).toEqual([[chunks[2], 1]]);
    await reader.read(4 * CHUNK - 1, 2); // straddles chunks 3 and 4
    expect(gets.get(chunks[3]!)).toBe(1);
    expect(gets.get(chunks[4]!)).toBe(1);
    expect(gets.has(chunks[0]!) || gets.has(chunks[1]!) || gets.has(chunks[5]!)).toBe(false);
  });

  it('fetches every chunk once for a sequential reader', async () => {
    const { store, gets } = countingStore();
    const size = 6 * CHUNK + 100;
    const data = Buffer.from(pattern(size, 52));
    const { cap } = await uploadBytes(store, convergence, data, { chunkSize: CHUNK });
    const reader = await openFile(store, cap);
    gets.clear();
    const parts: Uint8Array[] = [];
    for (let offset = 0; offset < size; offset += 1000) parts.push(await reader.read(offset, 1000));
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(gets.size).toBe(7);
    expect([...gets.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('a 100 MiB file', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'capstan-file-big-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it.each(['FsChunkStore', 'MemoryChunkStore'])('streams in and out of %s without the test holding it', async (kind) => {
    const store = kind === 'FsChunkStore' ? await FsChunkStore.open(root, { fsync: false }) : new MemoryChunkStore();
    const total = 100 * 1024 * 1024;
    const piece = Buffer.from(randomBytes(1024 * 1024));
    const inHash = createHash('sha256');
    const writer = createFileWriter(store, convergence);
    for (let i = 0; i < total / piece.length; i++) {
      piece.writeUInt32BE(i, 0); // every MiB distinct, so nothing dedupes
      inHash.update(piece);
      await writer.write(piece);
    }
    const result = await writer.finish();
    const expected = inHash.digest('hex');
    expect(hex(result.checksums.sha256)).toBe(expected);

    const reader = await openFile(store, result.cap);
    const outHash = createHash('sha256');
    let length = 0;
    for await (const part of reader.stream()) {
      outHash.update(part);
      length += part.length;
    }
    expect(length).toBe(total);
    expect(outHash.digest('hex')).toBe(expected);
  });
});
