import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sealConvergent, sha256 } from '../../src/crypto/index.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { ChunkSealer } from '../../src/tree/file/chunk-sealer.js';
import { deriveChunkKey } from '../../src/tree/file/format.js';
import { createFileWriter, openFile } from '../../src/tree/file/index.js';
import { giveSlot, takeSlot } from '../../src/tree/file/chunk-slots.js';
import { SealSession } from '../../src/tree/file/seal-pool.js';

const convergence = new Uint8Array(32).fill(7);
const CHUNK = 4096;

/** Seals `plaintext` through `session` in fresh slots; answers the key and ciphertext ‖ tag. */
async function seal(session: SealSession, plaintext: Uint8Array, slotSize = CHUNK + 16): Promise<{ key: Uint8Array; sealed: Buffer }> {
  const input = takeSlot(slotSize);
  const output = takeSlot(slotSize);
  input.bytes.set(plaintext);
  const key = await session.seal(input, plaintext.length, output);
  const sealed = Buffer.from(output.bytes.subarray(0, plaintext.length + 16));
  giveSlot(input);
  giveSlot(output);
  return { key, sealed };
}

describe('seal pool', () => {
  it('derives the same key and ciphertext as the inline path, and the whole-file digests', async () => {
    const session = new SealSession(convergence);
    const parts = [randomBytes(CHUNK), randomBytes(CHUNK), randomBytes(1234)];
    for (const part of parts) {
      const { key, sealed } = await seal(session, part);
      const expectedKey = deriveChunkKey(convergence, sha256(part));
      expect(Buffer.from(key).equals(Buffer.from(expectedKey))).toBe(true);
      expect(sealed.equals(sealConvergent(expectedKey, part))).toBe(true);
    }
    const sums = await session.finish();
    const whole = Buffer.concat(parts);
    for (const algo of ['sha256', 'md5', 'sha1'] as const) {
      expect(Buffer.from(sums[algo] ?? []).toString('hex')).toBe(createHash(algo).update(whole).digest('hex'));
    }
    session.close();
  });

  it('answers exactly what a ChunkSealer on the main thread does, for random secrets and chunks', async () => {
    // The worker runs the compiled ChunkSealer (dist/), this thread the
    // source: equal outputs also mean the build the worker loaded is current.
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.integer({ min: 1, max: CHUNK }), { minLength: 1, maxLength: 4 }),
        async (secret, lengths) => {
          const session = new SealSession(secret);
          const inline = new ChunkSealer(secret);
          try {
            for (const length of lengths) {
              const part = randomBytes(length);
              const { key, sealed } = await seal(session, part);
              const expected = inline.seal(part);
              expect(Buffer.from(key).equals(Buffer.from(expected.key))).toBe(true);
              expect(sealed.equals(Buffer.from(expected.sealed))).toBe(true);
            }
            expect(await session.finish()).toEqual(inline.finish());
          } finally {
            session.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('seals a chunk of many 64 KiB pieces in one update as the main thread does in pieces', async () => {
    const session = new SealSession(convergence);
    const part = randomBytes(1024 * 1024 + 17);
    const { key, sealed } = await seal(session, part, part.length + 16);
    const expected = new ChunkSealer(convergence).seal(part);
    expect(Buffer.from(key).equals(Buffer.from(expected.key))).toBe(true);
    expect(sealed.equals(Buffer.from(expected.sealed))).toBe(true);
    expect(sealed.equals(sealConvergent(key, part))).toBe(true);
    session.close();
  });

  it('gives the writer the same cap and checksums with and without offload', async () => {
    for (const size of [CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17]) {
      const data = randomBytes(size);
      const results = [];
      for (const offload of [false, true]) {
        const store = new MemoryChunkStore();
        const writer = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency: 2, offload });
        for (let i = 0; i < size; i += 1000) await writer.write(data.subarray(i, i + 1000));
        const result = await writer.finish();
        const reader = await openFile(store, result.cap);
        expect(Buffer.from(await reader.read(0, size)).equals(data)).toBe(true);
        results.push(result);
      }
      expect(results[1]!.cap.toString()).toBe(results[0]!.cap.toString());
      expect(results[1]!.checksums).toEqual(results[0]!.checksums);
    }
  });

  it('runs sessions on the same worker independently', async () => {
    const a = new SealSession(convergence);
    const b = new SealSession(convergence);
    const pa = randomBytes(CHUNK);
    const pb = randomBytes(CHUNK);
    await Promise.all([seal(a, pa), seal(b, pb)]);
    const [sa, sb] = await Promise.all([a.finish(), b.finish()]);
    expect(Buffer.from(sa.sha256).equals(createHash('sha256').update(pa).digest())).toBe(true);
    expect(Buffer.from(sb.sha256).equals(createHash('sha256').update(pb).digest())).toBe(true);
  });
});

describe('chunk slots', () => {
  it('are reused once given back, at most once each, and never shared by two holders', () => {
    const size = 12_345;
    const a = takeSlot(size);
    const b = takeSlot(size);
    expect(a.memory).not.toBe(b.memory);
    expect(a.bytes.length).toBe(size);
    giveSlot(a);
    giveSlot(a);
    const c = takeSlot(size);
    const d = takeSlot(size);
    expect(c).toBe(a);
    expect(d).not.toBe(a);
    for (const slot of [b, c, d]) giveSlot(slot);
  });

  it('a writer that fails or is aborted mid-upload gives its slots back, and the next upload is intact', async () => {
    const failing = new MemoryChunkStore();
    let puts = 0;
    const put = failing.put.bind(failing);
    failing.put = async (bytes, options) => {
      if (++puts === 3) throw new Error('disk on fire');
      return put(bytes, options);
    };
    const writer = createFileWriter(failing, convergence, { chunkSize: CHUNK, concurrency: 2 });
    const data = randomBytes(10 * CHUNK);
    await expect(
      (async () => {
        for (let i = 0; i < data.length; i += 3000) await writer.write(data.subarray(i, i + 3000));
        await writer.finish();
      })(),
    ).rejects.toThrow('disk on fire');
    const aborted = createFileWriter(new MemoryChunkStore(), convergence, { chunkSize: CHUNK, concurrency: 2 });
    await aborted.write(data.subarray(0, 3 * CHUNK + 5));
    aborted.abort();

    const store = new MemoryChunkStore();
    const good = createFileWriter(store, convergence, { chunkSize: CHUNK, concurrency: 2 });
    const other = randomBytes(7 * CHUNK + 3);
    for (let i = 0; i < other.length; i += 2500) await good.write(other.subarray(i, i + 2500));
    const result = await good.finish();
    const reader = await openFile(store, result.cap);
    expect(Buffer.from(await reader.read(0, other.length)).equals(other)).toBe(true);
  });
});
