import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileReadCap } from '../../src/cap/index.js';
import { startOffloadThreads } from '../../src/crypto/offload.js';
import type { AbortOptions } from '../../src/errors.js';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { ForwardingChunkStore } from '../../src/store/chunks/forwarding.js';
import { packFile } from '../../src/store/packs/pack-files.js';
import { LocalEngine } from '../../src/store/packs/local-engine.js';
import { fileChunks, openFile, uploadBytes } from '../../src/tree/file/index.js';

/**
 * A reader over a store that reads into the caller's buffer (getInto, the
 * pack store): its cache's chunks lie in shared-memory slots that go back
 * to a pool and are read into again (src/tree/file/reader.ts, CachedChunk).
 * A slot given back while a read still copied out of it, or while the store
 * still wrote it, would answer another chunk's bytes: every read here is
 * compared with the file, under reads that evict each other's chunks.
 */

/** Counts the chunk reads that went through get and through getInto. */
class CountingStore extends ForwardingChunkStore {
  gets = 0;
  intos = 0;
  /** Every prefetch hint, as asked. */
  readonly hints: ChunkAddress[][] = [];
  override get(address: ChunkAddress, options?: AbortOptions): Promise<Uint8Array> {
    this.gets++;
    return super.get(address, options);
  }
  protected override forwardGetInto(address: ChunkAddress, target: Uint8Array, options?: AbortOptions): Promise<Uint8Array | undefined> {
    this.intos++;
    return super.forwardGetInto(address, target, options);
  }
  protected override forwardPrefetch(addresses: readonly ChunkAddress[]): void {
    this.hints.push([...addresses]);
    super.forwardPrefetch(addresses);
  }
}

/**
 * Fault injection: getInto of a gated address waits for its gate, and every
 * getInto scribbles over its target at once, as a store reading into it
 * synchronously may: a slot handed out again too early shows at once.
 */
class GatedStore extends ForwardingChunkStore {
  readonly gates = new Map<string, Promise<void>>();
  protected override async forwardGetInto(
    address: ChunkAddress,
    target: Uint8Array,
    options?: AbortOptions,
  ): Promise<Uint8Array | undefined> {
    target.fill(0xaa);
    await this.gates.get(address.toString());
    return super.forwardGetInto(address, target, options);
  }
}

// Each sealed chunk (64 KiB + its tag) is large enough to be checked and opened on an offload thread.
const CHUNK = 64 * 1024;
const convergence = new Uint8Array(32).fill(3);
let dir: string;
let engine: LocalEngine;
let store: CountingStore;

async function upload(data: Uint8Array): Promise<FileReadCap> {
  return (await uploadBytes(store, convergence, data, { chunkSize: CHUNK })).cap as FileReadCap;
}

/** Reads of up to `most` bytes at random offsets of `size`, some across chunk boundaries. */
function randomReads(size: number, count: number, most: number): { offset: number; length: number }[] {
  return Array.from({ length: count }, () => {
    const offset = Math.floor(Math.random() * size);
    return { offset, length: 1 + Math.floor(Math.random() * most) };
  });
}

function expectSlice(got: Uint8Array, data: Uint8Array, offset: number, length: number): void {
  const want = data.subarray(offset, Math.min(data.length, offset + length));
  expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
}

beforeAll(async () => {
  await startOffloadThreads();
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-file-slots-'));
  engine = await LocalEngine.open({ slotsDir: path.join(dir, 'slots'), packsDir: path.join(dir, 'packs'), fsync: false });
  store = new CountingStore(engine.chunks as ChunkStore);
});

afterAll(async () => {
  await engine?.close();
  await fsp.rm(dir, { recursive: true, force: true });
});

describe('a reader over a store with getInto', () => {
  it('reads through getInto, and every one of many concurrent random reads answers the file', async () => {
    // Whole chunks only: a last chunk under the offload size would be read with get.
    const data = new Uint8Array(randomBytes(40 * CHUNK));
    const cap = await upload(data);
    const reader = await openFile(store, cap);
    const before = { gets: store.gets, intos: store.intos };
    // Rounds of 50 reads in flight at once, over 41 chunks: each read's chunks are evicted by the others'.
    for (let round = 0; round < 8; round++) {
      const reads = randomReads(data.length, 50, 3 * CHUNK);
      const got = await Promise.all(reads.map((r) => reader.read(r.offset, r.length)));
      for (const [i, bytes] of got.entries()) expectSlice(bytes, data, reads[i]!.offset, reads[i]!.length);
    }
    // Every chunk read went into a slot.
    expect(store.intos - before.intos).toBeGreaterThan(40);
    expect(store.gets - before.gets).toBe(0);
    reader.close?.();
  });

  it('a sequential reader tells the store its next chunks, 32 at a time, and reads them right; random reads tell it nothing', async () => {
    const data = new Uint8Array(randomBytes(70 * CHUNK));
    const cap = await upload(data);
    await engine.chunks.flush();
    const chunks = (await fileChunks(store, cap))!.chunks.map(String);
    const random = await openFile(store, cap);
    store.hints.length = 0;
    for (const r of randomReads(data.length, 40, 3 * CHUNK)) expectSlice(await random.read(r.offset, r.length), data, r.offset, r.length);
    random.close?.();
    expect(store.hints).toEqual([]);

    const reader = await openFile(store, cap);
    const out = new Uint8Array(data.length);
    for (let offset = 0; offset < data.length; offset += 32 * 1024) {
      await reader.readInto(offset, out.subarray(offset, offset + 32 * 1024));
    }
    expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    // The first read is not known to be sequential; the second asks for chunk 1 ahead, and so on.
    expect(store.hints.map((h) => h.map(String))).toEqual([chunks.slice(1, 33), chunks.slice(33, 65), chunks.slice(65, 70)]);
    reader.close?.();
  });

  it('two readers of different files, pipelined like sftp get with read-ahead, never see each other’s bytes', async () => {
    const a = new Uint8Array(randomBytes(24 * CHUNK + 5));
    const b = new Uint8Array(randomBytes(24 * CHUNK + 7));
    const [ra, rb] = await Promise.all([openFile(store, await upload(a)), openFile(store, await upload(b))]);
    const READ = 32 * 1024;
    const IN_FLIGHT = 64;
    const readAll = async (reader: typeof ra, data: Uint8Array): Promise<void> => {
      const out = new Uint8Array(data.length);
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < data.length) {
          const offset = next;
          next += READ;
          const target = out.subarray(offset, Math.min(data.length, offset + READ));
          expect(await reader.readInto(offset, target)).toBe(target.length);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
      expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    };
    for (let i = 0; i < 3; i++) await Promise.all([readAll(ra, a), readAll(rb, b)]);
    ra.close?.();
    rb.close?.();
  });

  it('a rotted chunk is IntegrityError for the reads that touch it only; the reader, and its slots, go on', async () => {
    const data = new Uint8Array(randomBytes(12 * CHUNK));
    const cap = await upload(data);
    await engine.chunks.flush();
    const chunks = (await fileChunks(store, cap))!.chunks;
    const entry = (await engine.chunks.index.get(chunks[5]!))!;
    const fd = await fsp.open(packFile(path.join(dir, 'packs'), entry.location.pack), 'r+');
    const one = Buffer.alloc(1);
    await fd.read(one, 0, 1, entry.location.offset + 1000);
    one[0]! ^= 0x40;
    await fd.write(one, 0, 1, entry.location.offset + 1000);
    await fd.close();
    const reader = await openFile(store, cap);
    for (let round = 0; round < 3; round++) {
      const reads = Array.from({ length: 12 }, (_, i) => ({ offset: i * CHUNK + 17, length: CHUNK }));
      const results = await Promise.allSettled(reads.map((r) => reader.read(r.offset, r.length)));
      results.forEach((result, i) => {
        // A read of chunk i also touches chunk i + 1 (it starts 17 bytes in).
        if (i === 4 || i === 5) {
          expect(result.status).toBe('rejected');
          expect((result as PromiseRejectedResult).reason).toMatchObject({ name: 'IntegrityError', storageIndex: chunks[5]!.toString() });
        } else {
          expect(result.status).toBe('fulfilled');
          expectSlice((result as PromiseFulfilledResult<Uint8Array>).value, data, reads[i]!.offset, reads[i]!.length);
        }
      });
    }
    reader.close?.();
  });

  it('a chunk evicted while a read still waits to copy out of it keeps its slot until that read is done', async () => {
    const data = new Uint8Array(randomBytes(8 * CHUNK));
    const cap = await upload(data);
    const gated = new GatedStore(store);
    const chunks = (await fileChunks(store, cap))!.chunks;
    let open!: () => void;
    gated.gates.set(chunks[1]!.toString(), new Promise<void>((resolve) => (open = resolve)));
    const reader = await openFile(gated, cap);
    // A reads chunks 0 and 1: chunk 0 arrives, chunk 1 waits at its gate, so A cannot copy yet.
    const a = reader.read(CHUNK - 100, 200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Reads of chunks 2..7 evict chunk 0 from the cache (it holds 4), and their fetches take free slots.
    const others = await Promise.all([2, 3, 4, 5, 6, 7].map((i) => reader.read(i * CHUNK, CHUNK)));
    for (const [k, bytes] of others.entries()) expectSlice(bytes, data, (k + 2) * CHUNK, CHUNK);
    open();
    expectSlice(await a, data, CHUNK - 100, 200);
    reader.close?.();
  });

  it('closing a reader with fetches in flight leaves nothing behind that a later reader sees', async () => {
    const data = new Uint8Array(randomBytes(16 * CHUNK));
    const cap = await upload(data);
    for (let i = 0; i < 5; i++) {
      const reader = await openFile(store, cap);
      const pending = Promise.allSettled(randomReads(data.length, 20, 2 * CHUNK).map((r) => reader.read(r.offset, r.length)));
      reader.close?.();
      await pending;
    }
    const reader = await openFile(store, cap);
    const reads = randomReads(data.length, 60, 2 * CHUNK);
    const got = await Promise.all(reads.map((r) => reader.read(r.offset, r.length)));
    for (const [i, bytes] of got.entries()) expectSlice(bytes, data, reads[i]!.offset, reads[i]!.length);
    reader.close?.();
  });
});
