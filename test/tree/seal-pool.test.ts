import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sealConvergent, sha256 } from '../../src/crypto/index.js';
import { MemoryChunkStore } from '../../src/store/memory-chunk-store.js';
import { deriveChunkKey } from '../../src/tree/file/format.js';
import { createFileWriter, openFile } from '../../src/tree/file/index.js';
import { SealSession } from '../../src/tree/file/seal-pool.js';

const convergence = new Uint8Array(32).fill(7);
const CHUNK = 4096;

function fresh(bytes: Uint8Array): Buffer {
  const b = Buffer.allocUnsafeSlow(bytes.length);
  b.set(bytes);
  return b;
}

describe('seal pool', () => {
  it('derives the same key and ciphertext as the inline path, and the whole-file digests', async () => {
    const session = new SealSession(convergence);
    const parts = [randomBytes(CHUNK), randomBytes(CHUNK), randomBytes(1234)];
    for (const part of parts) {
      const { key, sealed } = await session.seal(fresh(part));
      const expectedKey = deriveChunkKey(convergence, sha256(part));
      expect(Buffer.from(key).equals(Buffer.from(expectedKey))).toBe(true);
      expect(sealed.equals(sealConvergent(expectedKey, part))).toBe(true);
    }
    const sums = await session.finish();
    const whole = Buffer.concat(parts);
    for (const algo of ['sha256', 'md5', 'sha1'] as const) {
      expect(Buffer.from(sums[algo]).toString('hex')).toBe(createHash(algo).update(whole).digest('hex'));
    }
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
    await Promise.all([a.seal(fresh(pa)), b.seal(fresh(pb))]);
    const [sa, sb] = await Promise.all([a.finish(), b.finish()]);
    expect(Buffer.from(sa.sha256).equals(createHash('sha256').update(pa).digest())).toBe(true);
    expect(Buffer.from(sb.sha256).equals(createHash('sha256').update(pb).digest())).toBe(true);
  });
});
