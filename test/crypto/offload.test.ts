import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { AeadError, sealConvergent } from '../../src/crypto/aead.js';
import {
  endIdleThreads,
  OFFLOAD_MIN_BYTES,
  offloadThreadCount,
  openConvergentOwned,
  openConvergentShared,
  preadSha256Shared,
  sha256Owned,
  sha256Shared,
  startOffloadThreads,
} from '../../src/crypto/offload.js';
import { addressOf, addressOfChunk, verifyChunkInPlace, verifyOwnedChunk } from '../../src/store/address.js';

/** `bytes` copied into an ArrayBuffer of exactly its size, as a store's read buffer is. */
function owned(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(new Uint8Array(bytes).buffer);
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/**
 * src/crypto/offload.ts: large buffers of the caller's own go to a thread
 * (and come back as a new view: the caller's is detached), anything else is
 * done inline; either way the answers are those of the inline functions.
 */
describe('offload thread', () => {
  // Until a thread is ready the work stays inline; these tests want the thread.
  beforeEach(startOffloadThreads);

  it('sha256Owned answers the digest and the same bytes, on a thread only for a whole, large ArrayBuffer', async () => {
    const large = randomBytes(OFFLOAD_MIN_BYTES + 5);
    const cases = [
      { bytes: owned(randomBytes(100)), moves: false },
      { bytes: owned(large), moves: true },
      // A view into something larger, and shared memory, stay where they are.
      { bytes: new Uint8Array(owned(Buffer.concat([large, Buffer.alloc(1)])).buffer, 0, large.length), moves: false },
      { bytes: new Uint8Array(new SharedArrayBuffer(large.length)).fill(7), moves: false },
    ];
    for (const { bytes, moves } of cases) {
      const expected = Buffer.from(bytes);
      const r = await sha256Owned(bytes);
      expect(Buffer.from(r.digest).equals(sha256(expected))).toBe(true);
      expect(Buffer.from(r.bytes).equals(expected)).toBe(true);
      expect(bytes.length === 0).toBe(moves);
    }
  });

  it('openConvergentOwned opens what sealConvergent sealed, in place, on a thread or inline', async () => {
    for (const size of [0, 1000, OFFLOAD_MIN_BYTES, 1024 * 1024]) {
      const key = randomBytes(32);
      const plaintext = randomBytes(size);
      const sealed = owned(sealConvergent(key, plaintext));
      const opened = await openConvergentOwned(key, sealed);
      expect(Buffer.from(opened).equals(plaintext)).toBe(true);
    }
  });

  it('a flipped bit anywhere, or another key, is AeadError on both paths', async () => {
    for (const size of [1000, 300 * 1024]) {
      const key = randomBytes(32);
      const sealed = sealConvergent(key, randomBytes(size));
      for (const at of [0, Math.floor(size / 2), size + 3]) {
        const bad = owned(sealed);
        bad[at]! ^= 0x10;
        await expect(openConvergentOwned(key, bad)).rejects.toBeInstanceOf(AeadError);
      }
      await expect(openConvergentOwned(randomBytes(32), owned(sealed))).rejects.toBeInstanceOf(AeadError);
    }
  });

  it('answers many requests in flight each with its own buffer', async () => {
    const chunks = Array.from({ length: 24 }, () => ({ key: randomBytes(32), plaintext: randomBytes(200 * 1024) }));
    const opened = await Promise.all(chunks.map((c) => openConvergentOwned(c.key, owned(sealConvergent(c.key, c.plaintext)))));
    for (const [i, o] of opened.entries()) expect(Buffer.from(o).equals(chunks[i]!.plaintext)).toBe(true);
    const hashed = await Promise.all(chunks.map((c) => sha256Owned(owned(c.plaintext))));
    for (const [i, h] of hashed.entries()) expect(Buffer.from(h.digest).equals(sha256(chunks[i]!.plaintext))).toBe(true);
  });

  it('an idle thread ends; the next large request is done inline while a new one starts', async () => {
    const bytes = randomBytes(OFFLOAD_MIN_BYTES);
    expect(offloadThreadCount()).toBeGreaterThan(0);
    // A request in flight keeps its thread.
    const inFlight = sha256Owned(owned(randomBytes(4 * 1024 * 1024)));
    endIdleThreads();
    expect(offloadThreadCount()).toBeGreaterThan(0);
    await inFlight;
    endIdleThreads();
    expect(offloadThreadCount()).toBe(0);
    const first = owned(bytes);
    expect(Buffer.from((await sha256Owned(first)).digest).equals(sha256(bytes))).toBe(true);
    expect(first.length).toBe(bytes.length); // not moved: no thread was ready
    expect(offloadThreadCount()).toBeGreaterThan(0);
    await startOffloadThreads();
    const next = owned(bytes);
    expect(Buffer.from((await sha256Owned(next)).digest).equals(sha256(bytes))).toBe(true);
    expect(next.length).toBe(0); // moved to the thread
  });

  it('verifyOwnedChunk answers the bytes of a matching address and IntegrityError for a flipped byte', async () => {
    const bytes = randomBytes(512 * 1024);
    const address = addressOf(bytes);
    expect(Buffer.from(await verifyOwnedChunk(address, owned(bytes))).equals(bytes)).toBe(true);
    const bad = owned(bytes);
    bad[12345]! ^= 1;
    await expect(verifyOwnedChunk(address, bad)).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: address.toString() });
  });

  it('sha256Shared and addressOfChunk hash a large view into shared memory on a thread, where it lies, and the rest at once', async () => {
    /** `bytes` copied into shared memory, as a sealed chunk lies in its slot, at `at` of a larger slot. */
    const shared = (bytes: Uint8Array, at = 0): Uint8Array => {
      const view = new Uint8Array(new SharedArrayBuffer(at + bytes.length + 16), at, bytes.length);
      view.set(bytes);
      return view;
    };
    const large = randomBytes(1024 * 1024 + 16);
    const cases = [
      { bytes: shared(large), offloaded: true },
      { bytes: shared(large, 7), offloaded: true },
      { bytes: shared(randomBytes(OFFLOAD_MIN_BYTES - 1)), offloaded: false },
      { bytes: owned(large), offloaded: false },
      { bytes: randomBytes(100), offloaded: false },
    ];
    for (const { bytes, offloaded } of cases) {
      const before = Buffer.from(bytes);
      const address = addressOfChunk(bytes);
      // The pack store relies on this: what is not offloaded is answered without yielding.
      expect(address instanceof Promise).toBe(offloaded);
      expect((await address).equals(addressOf(before))).toBe(true);
      expect(Buffer.from(await sha256Shared(bytes)).equals(sha256(before))).toBe(true);
      // Nothing was moved or detached: the caller's view still holds the bytes.
      expect(Buffer.from(bytes).equals(before)).toBe(true);
    }
    // Many in flight at once, each answered with its own digest.
    const many = Array.from({ length: 16 }, () => shared(randomBytes(OFFLOAD_MIN_BYTES * 2)));
    const digests = await Promise.all(many.map((b) => sha256Shared(b)));
    expect(digests.map((d) => Buffer.from(d).toString('hex'))).toEqual(many.map((b) => sha256(b).toString('hex')));
  });

  it('openConvergentShared opens a view into shared memory where it lies, on a thread, and AeadError for a forgery', async () => {
    const key = randomBytes(32);
    for (const [size, at] of [
      [1024 * 1024, 0],
      [300 * 1024, 7],
      [1000, 0],
    ] as const) {
      const plaintext = randomBytes(size);
      const sealed = sealConvergent(key, plaintext);
      const memory = new SharedArrayBuffer(at + sealed.length + 32);
      const view = new Uint8Array(memory, at, sealed.length);
      view.set(sealed);
      const opened = await openConvergentShared(key, view);
      // The plaintext is where the ciphertext was: the start of the caller's view, nothing moved.
      expect(opened.buffer).toBe(memory);
      expect(opened.byteOffset).toBe(at);
      expect(Buffer.from(opened).equals(plaintext)).toBe(true);
      view.set(sealed);
      view[Math.floor(size / 2)]! ^= 0x10;
      await expect(openConvergentShared(key, view)).rejects.toBeInstanceOf(AeadError);
      view.set(sealed);
      await expect(openConvergentShared(randomBytes(32), view)).rejects.toBeInstanceOf(AeadError);
    }
    // Many in flight at once, each opened in its own memory.
    const chunks = Array.from({ length: 16 }, () => ({ key: randomBytes(32), plaintext: randomBytes(OFFLOAD_MIN_BYTES * 2) }));
    const views = chunks.map((c) => {
      const sealed = sealConvergent(c.key, c.plaintext);
      const view = new Uint8Array(new SharedArrayBuffer(sealed.length));
      view.set(sealed);
      return view;
    });
    const opened = await Promise.all(chunks.map((c, i) => openConvergentShared(c.key, views[i]!)));
    for (const [i, o] of opened.entries()) expect(Buffer.from(o).equals(chunks[i]!.plaintext)).toBe(true);
  });

  it('verifyChunkInPlace checks a view where it lies: IntegrityError for a flipped byte', async () => {
    for (const size of [1000, 512 * 1024]) {
      const bytes = randomBytes(size);
      const address = addressOf(bytes);
      const view = new Uint8Array(new SharedArrayBuffer(size + 3), 3, size);
      view.set(bytes);
      await verifyChunkInPlace(address, view);
      expect(Buffer.from(view).equals(bytes)).toBe(true);
      view[size - 1]! ^= 1;
      await expect(verifyChunkInPlace(address, view)).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: address.toString() });
    }
  });

  it('preadSha256Shared reads a range of an open file into shared memory and hashes it, on an idle thread; fewer bytes at the end', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-pread-'));
    const file = path.join(dir, 'f');
    const data = randomBytes(3 * 1024 * 1024);
    await fsp.writeFile(file, data);
    const fh = await fsp.open(file, 'r');
    try {
      const memory = new SharedArrayBuffer(1024 * 1024 + 100);
      for (const [position, length, at] of [
        [0, 1024 * 1024, 0],
        [12_345, 700_000, 9],
        [data.length - OFFLOAD_MIN_BYTES, OFFLOAD_MIN_BYTES, 0],
      ] as const) {
        const view = new Uint8Array(memory, at, length);
        const r = await preadSha256Shared(fh.fd, position, view);
        const expected = data.subarray(position, position + length);
        expect(r?.bytesRead).toBe(length);
        expect(Buffer.from(r!.digest).equals(sha256(expected))).toBe(true);
        expect(Buffer.from(view).equals(expected)).toBe(true);
      }
      // Past the end: what there is, and its digest.
      const tail = new Uint8Array(memory, 0, 1024 * 1024);
      const r = await preadSha256Shared(fh.fd, data.length - 100_000, tail);
      expect(r?.bytesRead).toBe(100_000);
      expect(Buffer.from(r!.digest).equals(sha256(data.subarray(data.length - 100_000)))).toBe(true);
      // Not shared, or too small to be worth the hop: nothing done, the caller reads as it would.
      expect(await preadSha256Shared(fh.fd, 0, new Uint8Array(1024 * 1024))).toBeUndefined();
      expect(await preadSha256Shared(fh.fd, 0, new Uint8Array(memory, 0, OFFLOAD_MIN_BYTES - 1))).toBeUndefined();
      // Only a thread with nothing else to do reads (the read holds it): while one read is in flight,
      // the others answer undefined and the caller reads on the file threads as before.
      const reads = Array.from({ length: 12 }, (_, i) => ({ position: i * 200_000, view: new Uint8Array(new SharedArrayBuffer(150_000)) }));
      const answers = await Promise.all(reads.map((x) => preadSha256Shared(fh.fd, x.position, x.view)));
      expect(answers.filter((a) => a !== undefined)).toHaveLength(1);
      const expected = data.subarray(0, 150_000);
      expect(Buffer.from(answers[0]!.digest).equals(sha256(expected))).toBe(true);
      expect(Buffer.from(reads[0]!.view).equals(expected)).toBe(true);
      // Nor while the thread hashes or opens for someone else.
      const busy = sha256Shared(new Uint8Array(new SharedArrayBuffer(1024 * 1024)));
      expect(await preadSha256Shared(fh.fd, 0, new Uint8Array(memory, 0, OFFLOAD_MIN_BYTES))).toBeUndefined();
      await busy;
    } finally {
      await fh.close();
      await fsp.rm(dir, { recursive: true, force: true });
    }
    // A descriptor that is not open is the thread's error, with its code; the thread goes on serving.
    await expect(preadSha256Shared(1_000_000, 0, new Uint8Array(new SharedArrayBuffer(OFFLOAD_MIN_BYTES)))).rejects.toMatchObject({
      code: 'EBADF',
    });
    expect(
      Buffer.from(await sha256Shared(new Uint8Array(new SharedArrayBuffer(OFFLOAD_MIN_BYTES)))).equals(
        sha256(Buffer.alloc(OFFLOAD_MIN_BYTES)),
      ),
    ).toBe(true);
  });
});
