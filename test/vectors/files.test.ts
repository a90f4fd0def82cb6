import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type FileReadCap, parseCap, type FileCap } from '../../src/cap/index.js';
import { taggedHmac, u64be } from '../../src/crypto/index.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import type { ChecksumAlgorithm } from '../../src/tree/index.js';
import { u32be } from '../../src/tree/file/format.js';
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

interface V2Case extends Omit<VectorCase, 'md5' | 'sha1'> {
  checksums: ChecksumAlgorithm[];
  md5?: string;
  sha1?: string;
}

const vectors = JSON.parse(readFileSync(new URL('./files.json', import.meta.url), 'utf8')) as {
  convergence: string;
  chunkSize: number;
  cases: VectorCase[];
  manifestV2: { cases: V2Case[] };
};
const convergence = Buffer.from(vectors.convergence, 'hex');
const pattern = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >>> 8) * 7 + (i >>> 16) * 13) & 0xff);
const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString('hex');

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

describe('immutable-file vectors (manifest v2: fewer recorded checksums)', () => {
  const v2 = vectors.manifestV2.cases;

  it('covers each smaller checksum set, and a multi-chunk file', () => {
    expect(v2.map((c) => c.checksums.join(','))).toEqual(['sha256', 'sha256,md5', 'sha256,sha1', 'sha256']);
  });

  it.each(v2)('recomputes "$name" exactly, inline and on the seal workers', async (vector) => {
    for (const offload of [false, true]) {
      const store = new MemoryChunkStore();
      const result = await uploadBytes(store, convergence, pattern(vector.length), {
        chunkSize: vectors.chunkSize,
        checksums: vector.checksums,
        offload,
      });
      expect(result.cap.toString()).toBe(vector.cap);
      expect(Object.keys(result.checksums).sort()).toEqual([...vector.checksums].sort());
      for (const a of vector.checksums) expect(hex(result.checksums[a])).toBe(vector[a]);
      const cap = result.cap as FileReadCap;
      expect(cap.verifier().toString()).toBe(vector.verifyCap);
      const list = (await fileChunks(store, cap))!;
      expect(list.manifest.toString()).toBe(vector.manifest);
      expect(list.chunks.map(String)).toEqual(vector.chunks);
      // The chunks are the v1 file's: only the manifest depends on the checksum set.
      const v1 = vectors.cases.find((c) => c.length === vector.length)!;
      expect(vector.chunks).toEqual(v1.chunks);
      // K as the spec states it, from the spec's own ingredients.
      const m = (vector.checksums.includes('md5') ? 1 : 0) | (vector.checksums.includes('sha1') ? 2 : 0);
      const k = taggedHmac(
        convergence,
        'capstan-v2:chk:manifest-key',
        u64be(vector.length),
        u32be(vectors.chunkSize),
        Uint8Array.of(m),
        Buffer.from(vector.sha256, 'hex'),
      );
      expect(hex(cap.manifestKey)).toBe(hex(k));
      const manifest = await store.get(list.manifest);
      expect(hex(manifest.subarray(0, 5))).toBe('4353464d02');
      expect(manifest[21]).toBe(m);
      const d = 32 + (m & 1 ? 16 : 0) + (m & 2 ? 20 : 0);
      expect(manifest.length).toBe(54 + 68 * vector.chunks!.length + d);
    }
  });

  it.each(v2.filter((c) => c.objects))('reads "$name" from the frozen stored objects; unrecorded digests are computed', async (vector) => {
    const store = new MemoryChunkStore();
    for (const bytes of Object.values(vector.objects!)) await store.put(Buffer.from(bytes, 'hex'));
    const reader = await openFile(store, parseCap(vector.cap) as FileCap);
    const data = pattern(vector.length);
    expect(hex(await reader.read(0, vector.length))).toBe(hex(data));
    const recorded = await reader.checksums();
    expect(Object.keys(recorded).sort()).toEqual([...vector.checksums].sort());
    for (const a of ['sha256', 'md5', 'sha1'] as const) {
      expect(hex(await reader.checksum(a))).toBe(createHash(a).update(data).digest('hex'));
    }
  });

  it('the v1 vectors read back with all three digests recorded', async () => {
    const vector = vectors.cases.find((c) => c.objects)!;
    const store = new MemoryChunkStore();
    for (const bytes of Object.values(vector.objects!)) await store.put(Buffer.from(bytes, 'hex'));
    const sums = await (await openFile(store, parseCap(vector.cap) as FileCap)).checksums();
    expect([hex(sums.sha256), hex(sums.md5), hex(sums.sha1)]).toEqual([vector.sha256, vector.md5, vector.sha1]);
  });
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
