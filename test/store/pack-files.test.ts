import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startOffloadThreads } from '../../src/crypto/offload.js';
import { encodeHeader, HEADER_BYTES, type Location } from '../../src/store/packs/format.js';
import { packFile, ReadHandles } from '../../src/store/packs/pack-files.js';

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
const packId = (i: number): string => i.toString(16).padStart(16, '0');
const shared = (n: number): Uint8Array => new Uint8Array(new SharedArrayBuffer(n));

/**
 * src/store/packs/pack-files.ts ReadHandles: what the local journal reads
 * packs through. readIntoHashed hands a handle's descriptor to an offload
 * thread, which reads and hashes there; a handle is never closed under such
 * a read (evicted or dropped meanwhile), or its number could name another
 * file by the time the thread reads.
 */
describe('ReadHandles', () => {
  let dir: string;
  let handles: ReadHandles;
  const bodies = new Map<string, Buffer>();

  beforeEach(async () => {
    await startOffloadThreads();
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-pack-files-'));
    handles = new ReadHandles(dir);
  });
  afterEach(async () => {
    await handles.closeAll();
    await fsp.rm(dir, { recursive: true, force: true });
    bodies.clear();
  });

  async function writePack(i: number, bytes = 300 * 1024): Promise<string> {
    const pack = packId(i);
    const body = randomBytes(bytes);
    bodies.set(pack, body);
    await fsp.writeFile(packFile(dir, pack), Buffer.concat([encodeHeader(Buffer.from(pack, 'hex')), body]));
    return pack;
  }
  const expected = (l: Location): Buffer => bodies.get(l.pack)!.subarray(l.offset - HEADER_BYTES, l.offset - HEADER_BYTES + l.length);

  it('readIntoHashed: into shared memory, read and hashed on an idle thread; anywhere else, read with the digest left to the caller', async () => {
    const pack = await writePack(1, 2 * 1024 * 1024);
    const location = { pack, offset: HEADER_BYTES + 1000, length: 1024 * 1024 };
    const target = shared(1024 * 1024 + 16);
    const r = await handles.readIntoHashed(location, target);
    expect(r.read).toBe(location.length);
    expect(Buffer.from(r.sha256!).equals(sha256(expected(location)))).toBe(true);
    expect(Buffer.from(target.subarray(0, location.length)).equals(expected(location))).toBe(true);

    const plain = new Uint8Array(location.length);
    expect(await handles.readIntoHashed(location, plain)).toEqual({ read: location.length, sha256: undefined });
    expect(Buffer.from(plain).equals(expected(location))).toBe(true);

    // A location running past the pack's end: the bytes there are, as readInto answers them.
    const past = { pack, offset: HEADER_BYTES + 2 * 1024 * 1024 - 100_000, length: 1024 * 1024 };
    const tail = await handles.readIntoHashed(past, target);
    expect(tail.read).toBe(100_000);
    expect(await handles.readInto(past, new Uint8Array(past.length))).toBe(100_000);
    await expect(handles.readIntoHashed(location, shared(10))).rejects.toBeInstanceOf(RangeError);
  });

  it('a pack dropped, or evicted by others opening, while reads use its handle: every read still answers its own bytes', async () => {
    const first = await writePack(0);
    const location = { pack: first, offset: HEADER_BYTES + 5, length: 256 * 1024 };
    const target = shared(location.length);
    const reading = handles.readIntoHashed(location, target);
    // The read has its handle and is on its way to the thread; gc deleting the pack drops the handle.
    await new Promise((resolve) => setImmediate(resolve));
    handles.drop(first);
    const r = await reading;
    expect(r.read).toBe(location.length);
    expect(Buffer.from(r.sha256!).equals(sha256(expected(location)))).toBe(true);

    // More packs than handles kept open (64), all read at once: each open evicts another's handle
    // while reads through it are in flight. (Before reads held their handle, readInto failed here
    // with EBADF, about a third of them: the handle was closed between its opening and the read.)
    const packs = await Promise.all(Array.from({ length: 100 }, (_, i) => writePack(i + 1, 200 * 1024)));
    for (let round = 0; round < 3; round++) {
      const plain = packs.map((pack, i) => ({
        location: { pack, offset: HEADER_BYTES + i, length: 64 * 1024 },
        target: new Uint8Array(64 * 1024),
      }));
      const counts = await Promise.all(plain.map((x) => handles.readInto(x.location, x.target)));
      for (const [i, n] of counts.entries()) {
        expect(n).toBe(64 * 1024);
        expect(Buffer.from(plain[i]!.target).equals(expected(plain[i]!.location))).toBe(true);
      }
    }
    for (let round = 0; round < 3; round++) {
      const reads = packs.map((pack, i) => ({
        location: { pack, offset: HEADER_BYTES + i * 7, length: 128 * 1024 },
        target: shared(128 * 1024),
      }));
      const answers = await Promise.all(reads.map((x) => handles.readIntoHashed(x.location, x.target)));
      // One goes to the thread; those asking while it is busy are read on the file threads.
      expect(answers.some((a) => a.sha256 !== undefined)).toBe(true);
      for (const [i, a] of answers.entries()) {
        const want = expected(reads[i]!.location);
        expect(a.read).toBe(want.length);
        if (a.sha256 !== undefined)
          expect(Buffer.from(a.sha256).toString('hex'), `pack ${i}, round ${round}`).toBe(sha256(want).toString('hex'));
        expect(Buffer.from(reads[i]!.target).equals(want)).toBe(true);
      }
    }
    // One at a time, each through the thread, while other packs' opens evict their handles.
    for (const [i, pack] of packs.entries()) {
      const location = { pack, offset: HEADER_BYTES + 3 * i, length: 100_000 };
      const opening = packs.slice(0, 70).map((p) => handles.readInto({ pack: p, offset: HEADER_BYTES, length: 10 }, new Uint8Array(10)));
      const a = await handles.readIntoHashed(location, shared(100_000));
      await Promise.all(opening);
      expect(Buffer.from(a.sha256!).toString('hex'), `pack ${i}`).toBe(sha256(expected(location)).toString('hex'));
    }
  });

  it('a pack that is gone, or holds another pack, is NotFoundError; an unreadable one TransientError; none leaves a descriptor open', async () => {
    const openFds = async (): Promise<number> => (await fsp.readdir('/proc/self/fd')).length;
    const before = await openFds();
    const read = (pack: string) => handles.readIntoHashed({ pack, offset: HEADER_BYTES, length: 100_000 }, shared(100_000));
    await expect(read(packId(7))).rejects.toMatchObject({ name: 'NotFoundError' });
    const other = await writePack(8);
    await fsp.rename(packFile(dir, other), packFile(dir, packId(9)));
    await expect(read(packId(9))).rejects.toMatchObject({ name: 'NotFoundError' });
    await fsp.mkdir(packFile(dir, packId(10)));
    await expect(read(packId(10))).rejects.toMatchObject({ name: 'TransientError' });
    expect(await openFds()).toBe(before);
  });
});
