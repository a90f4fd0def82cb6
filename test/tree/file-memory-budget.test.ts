import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { createFileWriter, openFile } from '../../src/tree/file/index.js';
import { MIN_CHUNK_SIZE } from '../../src/tree/file/format.js';
import { MemoryBudget } from '../../src/util/memory-budget.js';

/**
 * What file writers and readers take from a gateway's memory budget: chunks
 * in flight beyond a writer's first, the chunk a sequential reader fetches
 * ahead. Refused, they go one at a time; the bytes are the same either way,
 * and everything taken is given back.
 */
const convergence = new Uint8Array(32).fill(3);
const chunkSize = MIN_CHUNK_SIZE;

async function upload(store: MemoryChunkStore, memory: MemoryBudget | undefined, bytes: Uint8Array) {
  const writer = createFileWriter(store, convergence, { chunkSize, memory, offload: false });
  for (let at = 0; at < bytes.length; at += 10_000) await writer.write(bytes.subarray(at, at + 10_000));
  return writer.finish();
}

describe('the memory budget in file writers and readers', () => {
  it('a writer takes chunks beyond its first from the budget, gives them back, and writes the same file as without', async () => {
    const bytes = randomBytes(20 * chunkSize + 123);
    const store = new MemoryChunkStore();
    const alone = await upload(store, undefined, bytes);
    const roomy = new MemoryBudget(64 * 1024 * 1024);
    const withRoom = await upload(store, roomy, bytes);
    expect(roomy.highWater).toBeGreaterThan(0);
    expect(roomy.used).toBe(0);
    // A budget already held by others: every extra chunk is refused, the upload still completes.
    const full = new MemoryBudget(4 * 1024 * 1024);
    expect(full.tryAcquire(full.optionalUpTo)).toBe(true);
    const refused = await upload(store, full, bytes);
    expect(full.refused).toBeGreaterThan(0);
    expect(full.used).toBe(full.optionalUpTo);
    expect(withRoom.cap.toString()).toBe(alone.cap.toString());
    expect(refused.cap.toString()).toBe(alone.cap.toString());
  });

  it('a reader holds the chunk it reads ahead until it is read, drops it when pressure starts, and close gives it back', async () => {
    const bytes = randomBytes(6 * chunkSize);
    const store = new MemoryChunkStore();
    const { cap } = await upload(store, undefined, bytes);
    const memory = new MemoryBudget(4 * 1024 * 1024);
    const reader = await openFile(store, cap, { memory });
    const ahead = chunkSize + 16;
    expect(Buffer.from(await reader.read(0, 1000))).toEqual(bytes.subarray(0, 1000));
    expect(Buffer.from(await reader.read(1000, chunkSize))).toEqual(bytes.subarray(1000, 1000 + chunkSize));
    // Sequential: the chunk after the one just read is fetched ahead, and held.
    expect(memory.used).toBe(ahead);
    // Pressure (other sessions' queued bytes) makes it let go at once.
    memory.charge(memory.pressureAt);
    expect(memory.used).toBe(memory.pressureAt);
    expect(Buffer.from(await reader.read(1000 + chunkSize, 3000))).toEqual(bytes.subarray(1000 + chunkSize, 4000 + chunkSize));
    // Under pressure nothing is read ahead.
    expect(memory.used).toBe(memory.pressureAt);
    memory.release(memory.pressureAt);
    expect(Buffer.from(await reader.read(4000 + chunkSize, chunkSize))).toEqual(bytes.subarray(4000 + chunkSize, 4000 + 2 * chunkSize));
    expect(memory.used).toBe(ahead);
    reader.close?.();
    expect(memory.used).toBe(0);
    // Reads after close still work (on demand).
    expect(Buffer.from(await reader.read(5 * chunkSize, chunkSize))).toEqual(bytes.subarray(5 * chunkSize));
  });
});
