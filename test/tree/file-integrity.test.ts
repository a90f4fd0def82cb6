import { mkdtemp, open as openFd, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileReadCap } from '../../src/cap/index.js';
import { TAG, randomBytes, sealConvergent, sha256, taggedHash } from '../../src/crypto/index.js';
import { IntegrityError } from '../../src/errors.js';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { FsChunkStore } from '../../src/store/chunks/fs/fs-chunk-store.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { HEADER_BYTES, MANIFEST_MAGIC, MAX_CHUNK_COUNT, encodeHeader, manifestAddressOf } from '../../src/tree/file/format.js';
import { fileChunks, openFile, uploadBytes } from '../../src/tree/file/index.js';

const CHUNK = 4096;
const convergence = new Uint8Array(32).fill(7);
const data = Uint8Array.from({ length: 3 * CHUNK + 100 }, (_, i) => (i * 131 + (i >> 12)) & 255);

function rawChunks(store: MemoryChunkStore): Map<string, Uint8Array> {
  return (store as unknown as { chunks: Map<string, Uint8Array> }).chunks;
}

async function readEverything(store: ChunkStore, cap: FileReadCap): Promise<void> {
  const reader = await openFile(store, cap);
  for await (const _ of reader.stream()) void _;
}

/** Expects an IntegrityError that names `address` (never wrong bytes, never another error). */
async function expectIntegrityError(promise: Promise<unknown>, address: ChunkAddress): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IntegrityError);
  expect((err as IntegrityError).name).toBe('IntegrityError');
  expect((err as IntegrityError).storageIndex).toBe(address.toString());
}

/**
 * Fault injection: a store that hands back altered bytes without checking
 * them, to exercise the file layer's own checks (a real store would already
 * have caught the CID mismatch).
 */
class LyingStore implements ChunkStore {
  readonly features = { delete: true, list: true };
  constructor(
    private readonly inner: MemoryChunkStore,
    private readonly alter: (address: ChunkAddress, bytes: Uint8Array) => Uint8Array,
  ) {}
  put(bytes: Uint8Array) {
    return this.inner.put(bytes);
  }
  async get(address: ChunkAddress) {
    const stored = rawChunks(this.inner).get(address.toString());
    if (!stored) return this.inner.get(address); // NotFoundError
    // new Uint8Array(...) copies even when the stored object is a Buffer (whose slice() is a view).
    return this.alter(address, new Uint8Array(stored));
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
  async close() {}
}

describe('tampering in a MemoryChunkStore', () => {
  it('turns one flipped byte anywhere into IntegrityError naming the object', async () => {
    const store = new MemoryChunkStore();
    const cap = (await uploadBytes(store, convergence, data, { chunkSize: CHUNK })).cap as FileReadCap;
    const { manifest, chunks } = (await fileChunks(store, cap))!;
    for (const address of [manifest, ...chunks]) {
      for (const position of [0, 17, -1]) {
        const bytes = rawChunks(store).get(address.toString())!;
        const at = position < 0 ? bytes.length + position : position;
        bytes[at]! ^= 0x01;
        await expectIntegrityError(readEverything(store, cap), address);
        bytes[at]! ^= 0x01;
      }
    }
    await readEverything(store, cap); // and all is well again
  });
});

describe('tampering in an FsChunkStore', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'capstan-file-tamper-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('turns a byte flipped on disk into IntegrityError', async () => {
    const store = await FsChunkStore.open(root, { fsync: false });
    const cap = (await uploadBytes(store, convergence, data, { chunkSize: CHUNK })).cap as FileReadCap;
    const { manifest, chunks } = (await fileChunks(store, cap))!;
    for (const address of [manifest, chunks[1]!]) {
      const file = await openFd(store.chunkPath(address), 'r+');
      try {
        const one = Buffer.alloc(1);
        await file.read(one, 0, 1, 40);
        await file.write(Buffer.of(one[0]! ^ 0x80), 0, 1, 40);
        await expectIntegrityError(readEverything(store, cap), address);
        await file.write(one, 0, 1, 40);
      } finally {
        await file.close();
      }
    }
    await readEverything(store, cap);
  });
});

describe('the file layer checks what a store hands back', () => {
  let inner: MemoryChunkStore;
  let cap: FileReadCap;
  let manifest: ChunkAddress;
  let chunks: ChunkAddress[];
  beforeAll(async () => {
    inner = new MemoryChunkStore();
    cap = (await uploadBytes(inner, convergence, data, { chunkSize: CHUNK })).cap as FileReadCap;
    ({ manifest, chunks } = (await fileChunks(inner, cap))!);
  });

  const flip = (target: () => ChunkAddress, at: number) => (address: ChunkAddress, bytes: Uint8Array) => {
    if (address.equals(target())) bytes[at]! ^= 0x04;
    return bytes;
  };

  it('checks the manifest hash against the cap', async () => {
    await expectIntegrityError(
      openFile(
        new LyingStore(
          inner,
          flip(() => manifest, 60),
        ),
        cap,
      ),
      manifest,
    );
    await expectIntegrityError(
      fileChunks(
        new LyingStore(
          inner,
          flip(() => manifest, 60),
        ),
        cap.verifier(),
      ),
      manifest,
    );
  });

  it('authenticates every chunk', async () => {
    for (const at of [0, 100, CHUNK + 15]) {
      await expectIntegrityError(
        readEverything(
          new LyingStore(
            inner,
            flip(() => chunks[2]!, at),
          ),
          cap,
        ),
        chunks[2]!,
      );
    }
  });

  it('refuses another valid chunk in place of the right one', async () => {
    const swap = (address: ChunkAddress, bytes: Uint8Array) =>
      address.equals(chunks[1]!) ? new Uint8Array(rawChunks(inner).get(chunks[0]!.toString())!) : bytes;
    const reader = await openFile(new LyingStore(inner, swap), cap);
    await expectIntegrityError(reader.read(CHUNK + 5, 10), chunks[1]!);
    expect(Buffer.from(await reader.read(5, 10)).equals(Buffer.from(data.subarray(5, 15)))).toBe(true);
  });

  it('checks each chunk has exactly its expected length', async () => {
    const truncate = (address: ChunkAddress, bytes: Uint8Array) => (address.equals(chunks[3]!) ? bytes.subarray(0, 50) : bytes);
    await expectIntegrityError(readEverything(new LyingStore(inner, truncate), cap), chunks[3]!);
  });
});

describe('hostile manifests (a cap made for them, so the hash matches)', () => {
  const store = new MemoryChunkStore();
  const key = randomBytes(32);

  /** Stores `bytes` as a manifest and returns a cap whose hash and size match it. */
  async function capFor(bytes: Uint8Array, size: number): Promise<FileReadCap> {
    await store.put(bytes);
    return new FileReadCap(key, sha256(bytes), size);
  }

  it('refuses a header claiming a huge chunk count, without allocating for it', async () => {
    const chunkCount = 0xffffffff;
    const chunkSize = 4096;
    const size = chunkCount * chunkSize;
    const header = new Uint8Array(HEADER_BYTES + 64);
    header.set(encodeHeader({ chunkSize, size, chunkCount }));
    const cap = await capFor(header, size);
    const before = process.memoryUsage().arrayBuffers;
    await expectIntegrityError(openFile(store, cap), manifestAddressOf(cap.manifestHash));
    await expectIntegrityError(fileChunks(store, cap.verifier()), manifestAddressOf(cap.manifestHash));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('refuses the largest legal chunk count when the bytes are not there', async () => {
    const size = MAX_CHUNK_COUNT * 4096;
    const cap = await capFor(encodeHeader({ chunkSize: 4096, size, chunkCount: MAX_CHUNK_COUNT }), size);
    await expectIntegrityError(openFile(store, cap), manifestAddressOf(cap.manifestHash));
  });

  it('refuses inconsistent or foreign headers', async () => {
    const good = { chunkSize: 4096, size: 10_000, chunkCount: 3 };
    const body = new Uint8Array(3 * 36 + 16 + 3 * 32 + 68 + 16);
    const cases: { name: string; header: Uint8Array; size: number }[] = [
      { name: 'chunk count off by one', header: encodeHeader({ ...good, chunkCount: 4 }), size: good.size },
      { name: 'size differs from the cap', header: encodeHeader(good), size: good.size + 1 },
      { name: 'chunk size below the floor', header: encodeHeader({ chunkSize: 1024, size: 2000, chunkCount: 2 }), size: 2000 },
      { name: 'a literal-sized file', header: encodeHeader({ chunkSize: 4096, size: 64, chunkCount: 1 }), size: 64 },
      {
        name: 'version 2',
        header: (() => {
          const h = encodeHeader(good);
          h[4] = 2;
          return h;
        })(),
        size: good.size,
      },
      {
        name: 'wrong magic',
        header: (() => {
          const h = encodeHeader(good);
          h[0] = 0;
          return h;
        })(),
        size: good.size,
      },
    ];
    expect(MANIFEST_MAGIC).toHaveLength(4);
    for (const { name, header, size } of cases) {
      const cap = await capFor(new Uint8Array([...header, ...body]), size);
      await expectIntegrityError(openFile(store, cap), manifestAddressOf(cap.manifestHash)).catch((err) => {
        throw new Error(`${name}: ${String(err)}`);
      });
    }
  });

  it('refuses a v2 header whose checksum set is all three (v1 encodes that) or has unknown bits, at the length it would imply', async () => {
    const good = { chunkSize: 4096, size: 10_000, chunkCount: 3 };
    for (const m of [3, 4, 0x80, 0xff]) {
      const header = new Uint8Array([...encodeHeader(good), m]);
      header[4] = 2;
      const d = 32 + (m & 1 ? 16 : 0) + (m & 2 ? 20 : 0);
      const cap = await capFor(new Uint8Array([...header, ...new Uint8Array(3 * 36 + 16 + 3 * 32 + d + 16)]), good.size);
      await expectIntegrityError(openFile(store, cap), manifestAddressOf(cap.manifestHash));
    }
    // A v2 header cut before its checksum set byte.
    const short = encodeHeader({ ...good, checksums: 0 }).subarray(0, HEADER_BYTES);
    const cap = await capFor(short, good.size);
    await expectIntegrityError(openFile(store, cap), manifestAddressOf(cap.manifestHash));
  });

  it('a v2 manifest with its checksum set byte changed fails, whatever the set', async () => {
    const fresh = new MemoryChunkStore();
    const { cap } = await uploadBytes(fresh, convergence, data, { chunkSize: CHUNK, checksums: ['sha256', 'md5'] });
    const readCap = cap as FileReadCap;
    for (const m of [0, 2]) {
      const lying = new LyingStore(fresh, (address, bytes) => {
        if (address.toString() === manifestAddressOf(readCap.manifestHash).toString()) bytes[HEADER_BYTES] = m;
        return bytes;
      });
      await expectIntegrityError(openFile(lying, readCap), manifestAddressOf(readCap.manifestHash));
    }
    const reader = await openFile(fresh, readCap);
    expect(Object.keys(await reader.checksums()).sort()).toEqual(['md5', 'sha256']);
  });

  it('refuses sections that do not authenticate under the cap key, or hold malformed addresses', async () => {
    const header = encodeHeader({ chunkSize: 4096, size: 5000, chunkCount: 2 });
    const verifyKey = taggedHash(TAG.manifestVerifyKey, key);
    const goodAddresses = new Uint8Array(72);
    for (const at of [0, 36]) goodAddresses.set([0x01, 0x55, 0x12, 0x20], at);
    const keys = sealConvergent(key, new Uint8Array(2 * 32 + 68), header);

    const wrongKey = new Uint8Array([...header, ...sealConvergent(randomBytes(32), goodAddresses, header), ...keys]);
    const cap1 = await capFor(wrongKey, 5000);
    await expectIntegrityError(openFile(store, cap1), manifestAddressOf(cap1.manifestHash));

    const badAddresses = goodAddresses.slice();
    badAddresses[37] = 0x70; // dag-pb, not raw
    const malformed = new Uint8Array([...header, ...sealConvergent(verifyKey, badAddresses, header), ...keys]);
    const cap2 = await capFor(malformed, 5000);
    await expectIntegrityError(fileChunks(store, cap2.verifier()), manifestAddressOf(cap2.manifestHash));

    const otherAad = encodeHeader({ chunkSize: 4096, size: 5001, chunkCount: 2 });
    const unbound = new Uint8Array([...header, ...sealConvergent(verifyKey, goodAddresses, otherAad), ...keys]);
    const cap3 = await capFor(unbound, 5000);
    await expectIntegrityError(openFile(store, cap3), manifestAddressOf(cap3.manifestHash));
  });

  it('passes NotFoundError through for a missing manifest or chunk', async () => {
    const fresh = new MemoryChunkStore();
    const cap = (await uploadBytes(fresh, convergence, data, { chunkSize: CHUNK })).cap as FileReadCap;
    const { manifest, chunks } = (await fileChunks(fresh, cap))!;
    await fresh.delete(chunks[0]!);
    await expect(readEverything(fresh, cap)).rejects.toHaveProperty('name', 'NotFoundError');
    await fresh.delete(manifest);
    await expect(openFile(fresh, cap)).rejects.toHaveProperty('name', 'NotFoundError');
  });
});
