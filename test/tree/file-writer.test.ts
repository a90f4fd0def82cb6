import { describe, expect, it, vi } from 'vitest';
import { GCM_TAG_BYTES } from '../../src/crypto/index.js';
import { TransientError, type AbortOptions } from '../../src/errors.js';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { createFileWriter, openFile } from '../../src/tree/file/index.js';

const CHUNK = 4096;
const convergence = new Uint8Array(32).fill(9);

function block(seed: number, length = CHUNK): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed * 13 + (i >> 8)) & 255);
}

/**
 * Fault injection around a real MemoryChunkStore: puts can be held until
 * released, delayed, or made to fail; it records what was in flight.
 */
class InstrumentedStore implements ChunkStore {
  readonly features = { delete: true, list: true };
  readonly inner = new MemoryChunkStore();
  puts = 0;
  inFlightBytes = 0;
  maxInFlightBytes = 0;
  maxInFlight = 0;
  inFlight = 0;
  held: (() => void)[] = [];
  hold = false;
  delayMs = 0;
  failPut?: number;
  sawAbort = 0;

  async put(bytes: Uint8Array, options: AbortOptions = {}): Promise<ChunkAddress> {
    const n = ++this.puts;
    this.inFlight++;
    this.inFlightBytes += bytes.length;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.maxInFlightBytes = Math.max(this.maxInFlightBytes, this.inFlightBytes);
    try {
      if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve));
      if (this.delayMs) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      if (options.signal?.aborted) {
        this.sawAbort++;
        options.signal.throwIfAborted();
      }
      if (n === this.failPut) throw new TransientError('injected put failure');
      return await this.inner.put(bytes);
    } finally {
      this.inFlight--;
      this.inFlightBytes -= bytes.length;
    }
  }
  releaseOne(): void {
    this.held.shift()?.();
  }
  releaseAll(): void {
    this.hold = false;
    for (const release of this.held.splice(0)) release();
  }
  get(address: ChunkAddress) {
    return this.inner.get(address);
  }
  has(address: ChunkAddress) {
    return this.inner.has(address);
  }
  delete(address: ChunkAddress) {
    return this.inner.delete(address);
  }
  list() {
    return this.inner.list();
  }
  usage() {
    return this.inner.usage();
  }
  async close() {}
}

/**
 * Whether `promise` is still unsettled after `ms`. Proving that something does
 * not happen needs time to pass (the one sleep here): 20 ms is many event-loop
 * turns and sealing-thread round trips, after which a write or finish that did
 * not wait would have settled. Everything that does happen is awaited instead.
 */
async function pendingAfter(promise: Promise<unknown>, ms = 20): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return !settled;
}

describe('FileWriter backpressure', () => {
  it('holds write() while every put slot is busy, and lets it go when one frees', async () => {
    const store = new InstrumentedStore();
    store.hold = true;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency: 2 });
    await writer.write(block(1));
    await writer.write(block(2));
    const third = writer.write(block(3));
    // Chunks are sealed on a worker thread (seal-pool.ts) before their put starts.
    await vi.waitFor(() => expect(store.puts).toBe(2));
    expect(await pendingAfter(third)).toBe(true);
    store.releaseOne();
    await third;
    await vi.waitFor(() => expect(store.puts).toBe(3));
    store.releaseAll();
    const { cap } = await writer.finish();
    const reader = await openFile(store, cap);
    expect(Buffer.from(await reader.read(2 * CHUNK, CHUNK)).equals(Buffer.from(block(3)))).toBe(true);
  });

  it('keeps the bytes in flight under concurrency × sealed chunk for a slow store', async () => {
    const store = new InstrumentedStore();
    store.delayMs = 3;
    const concurrency = 3;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency });
    for (let i = 0; i < 40; i++) await writer.write(block(i, CHUNK / 2 + 3)); // misaligned with chunks on purpose
    await writer.finish();
    expect(store.maxInFlight).toBe(concurrency);
    expect(store.maxInFlightBytes).toBeLessThanOrEqual(concurrency * (CHUNK + GCM_TAG_BYTES));
  });

  it('keeps the order of overlapping write() calls', async () => {
    const store = new InstrumentedStore();
    store.delayMs = 1;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency: 2 });
    const parts = Array.from({ length: 10 }, (_, i) => block(i, 1500));
    await Promise.all(parts.map((part) => writer.write(part)));
    const { cap } = await writer.finish();
    const reader = await openFile(store, cap);
    expect(Buffer.from(await reader.read(0, 15000)).equals(Buffer.concat(parts))).toBe(true);
  });
});

describe('FileWriter write order', () => {
  it('a one-chunk file puts its manifest alongside its chunk, and returns the cap only once both are stored', async () => {
    const store = new InstrumentedStore();
    store.hold = true;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK });
    await writer.write(block(1, 1000));
    const finishing = writer.finish();
    await vi.waitFor(() => expect(store.held).toHaveLength(2)); // the chunk and the manifest, both in flight
    store.releaseOne();
    expect(await pendingAfter(finishing)).toBe(true);
    store.releaseAll();
    const { cap } = await finishing;
    expect(Buffer.from(await (await openFile(store, cap)).read(0, 1000))).toEqual(Buffer.from(block(1, 1000)));
  });

  it('a one-chunk file whose chunk put fails rejects finish() even though its manifest was stored', async () => {
    const store = new InstrumentedStore();
    store.failPut = 1;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK });
    await writer.write(block(2, 1000));
    await expect(writer.finish()).rejects.toMatchObject({ name: 'TransientError' });
  });
});

describe('FileWriter failure and abort', () => {
  it('rejects finish() with the error of a failed put, and refuses more writes', async () => {
    const store = new InstrumentedStore();
    store.failPut = 3;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency: 2 });
    let writeError: unknown;
    try {
      for (let i = 0; i < 10; i++) await writer.write(block(i));
    } catch (err) {
      writeError = err;
    }
    // The failure surfaces at the next write or at finish, whichever comes first.
    if (writeError !== undefined) expect(writeError).toHaveProperty('name', 'TransientError');
    await expect(writer.finish()).rejects.toHaveProperty('name', 'TransientError');
    await expect(writer.write(block(99))).rejects.toHaveProperty('name', 'TransientError');
  });

  it('fails the manifest put like a chunk put', async () => {
    const store = new InstrumentedStore();
    store.failPut = 3; // two chunks, then the manifest
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK });
    await writer.write(block(1, 2 * CHUNK));
    await expect(writer.finish()).rejects.toHaveProperty('name', 'TransientError');
    expect((await store.usage()).chunks).toBe(2);
  });

  it('abort() drops everything: waiting and later calls reject with AbortError, no manifest is written', async () => {
    const store = new InstrumentedStore();
    store.hold = true;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency: 1 });
    await writer.write(block(1));
    const waiting = writer.write(block(2));
    expect(await pendingAfter(waiting)).toBe(true);
    writer.abort();
    await expect(waiting).rejects.toHaveProperty('name', 'AbortError');
    await expect(writer.write(block(3))).rejects.toHaveProperty('name', 'AbortError');
    await expect(writer.finish()).rejects.toHaveProperty('name', 'AbortError');
    store.releaseAll();
    await vi.waitFor(() => expect(store.sawAbort).toBe(1)); // the held put saw the writer's signal
    expect(store.puts).toBe(1);
    expect((await store.usage()).chunks).toBe(0);
  });

  it('treats a caller signal firing mid-write as the end of the writer', async () => {
    const store = new InstrumentedStore();
    store.hold = true;
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency: 1 });
    await writer.write(block(1));
    const controller = new AbortController();
    const waiting = writer.write(block(2), { signal: controller.signal });
    expect(await pendingAfter(waiting)).toBe(true); // half accepted: the chunk is cut, its put is waiting for a slot
    controller.abort();
    await expect(waiting).rejects.toHaveProperty('name', 'AbortError');
    await expect(writer.finish()).rejects.toHaveProperty('name', 'AbortError');
    store.releaseAll();
  });

  it('leaves the writer usable when the signal had fired before the write began', async () => {
    const store = new InstrumentedStore();
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK });
    await expect(writer.write(block(1), { signal: AbortSignal.abort() })).rejects.toHaveProperty('name', 'AbortError');
    expect(writer.size).toBe(0);
    await writer.write(block(2, 100));
    expect((await writer.finish()).size).toBe(100);
  });

  it('refuses writes after finish', async () => {
    const store = new InstrumentedStore();
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK });
    await writer.write(block(1, 10));
    const { cap } = await writer.finish();
    expect(cap.kind).toBe('literal');
    await expect(writer.write(block(2, 10))).rejects.toHaveProperty('name', 'InvalidInputError');
    await expect(writer.finish()).rejects.toHaveProperty('name', 'InvalidInputError');
  });

  it('writes no chunk for a literal-sized file', async () => {
    const store = new InstrumentedStore();
    const writer = createFileWriter(store, convergence, { chunkSize: CHUNK });
    for (let i = 0; i < 64; i++) await writer.write(Uint8Array.of(i));
    const { cap, size } = await writer.finish();
    expect(size).toBe(64);
    expect(cap.toString().startsWith('CS1:LIT:')).toBe(true);
    expect(store.puts).toBe(0);
  });
});
