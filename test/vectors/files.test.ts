import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type FileReadCap, parseCap, type FileCap } from '../../src/cap/index.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { fileChunks, openFile, uploadBytes } from '../../src/tree/file/index.js';

/**
 * Frozen vectors for immutable files, format v1. files.json was generated
 * once by the v1 code and is never regenerated: if this test fails, the
 * change broke the format (every existing cap and stored file), not the
 * vectors.
 */

interface VectorCase {
  name: string;
  length: number;
  cap: string;
  verifyCap?: string;
  manifest?: string;
  chunks?: string[];
  objects?: Record<string, string>;
  sha256: string;
  md5: string;
  sha1: string;
}

const vectors = JSON.parse(readFileSync(new URL('./files.json', import.meta.url), 'utf8')) as {
  convergence: string;
  chunkSize: number;
  cases: VectorCase[];
};
const convergence = Buffer.from(vectors.convergence, 'hex');
const pattern = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >>> 8) * 7 + (i >>> 16) * 13) & 0xff);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('immutable-file vectors (format v1)', () => {
  it('covers literals, a one-chunk file and a multi-chunk file', () => {
    expect(vectors.cases.map((c) => c.length)).toEqual([0, 1, 64, 65, 100, 163840]);
    expect(vectors.chunkSize).toBe(65536);
  });

  it.each(vectors.cases)('recomputes "$name" exactly', async (vector) => {
    const store = new MemoryChunkStore();
    const result = await uploadBytes(store, convergence, pattern(vector.length), { chunkSize: vectors.chunkSize });
    expect(result.cap.toString()).toBe(vector.cap);
    expect(hex(result.checksums.sha256)).toBe(vector.sha256);
    expect(hex(result.checksums.md5)).toBe(vector.md5);
    expect(hex(result.checksums.sha1)).toBe(vector.sha1);
    if (vector.manifest === undefined) {
      expect(result.cap.kind).toBe('literal');
      expect((await store.usage()).chunks).toBe(0);
      return;
    }
    const cap = result.cap as FileReadCap;
    expect(cap.verifier().toString()).toBe(vector.verifyCap);
    const list = (await fileChunks(store, cap))!;
    expect(list.manifest.toString()).toBe(vector.manifest);
    expect(list.chunks.map(String)).toEqual(vector.chunks);
    for (const [address, bytes] of Object.entries(vector.objects ?? {})) {
      const stored = await store.get(list.chunks.find((c) => c.toString() === address) ?? list.manifest);
      expect(hex(stored)).toBe(bytes);
    }
  });

  it.each(vectors.cases.filter((c) => c.objects))('reads "$name" from the frozen stored objects', async (vector) => {
    const store = new MemoryChunkStore();
    for (const bytes of Object.values(vector.objects!)) await store.put(Buffer.from(bytes, 'hex'));
    expect(new Set((await collect(store.list())).map(String))).toEqual(new Set([vector.manifest, ...vector.chunks!]));
    const reader = await openFile(store, parseCap(vector.cap) as FileCap);
    expect(hex(await reader.read(0, vector.length))).toBe(hex(pattern(vector.length)));
    expect(hex((await reader.checksums()).sha256)).toBe(vector.sha256);
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
