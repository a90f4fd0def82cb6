import { randomBytes } from 'node:crypto';
import { CID } from 'multiformats/cid';
import * as json from 'multiformats/codecs/json';
import { sha256 } from 'multiformats/hashes/sha2';
import { identity } from 'multiformats/hashes/identity';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startOffloadThreads } from '../../src/crypto/offload.js';
import { addressOf, MAX_CHUNK_BYTES } from '../../src/store/address.js';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';

/**
 * The ChunkStore contract (src/store/chunks/chunk-store.ts) as tests. Every backend
 * runs it from a short test file; a test is skipped only when the store's
 * `features` (or a missing optional method or hook) says it does not apply.
 */
export interface ChunkStoreConformanceOptions {
  setup(): Promise<ChunkStore>;
  teardown(store: ChunkStore): Promise<void>;
  /** Flip a byte of the stored copy of `address`, behind the store's back. Enables the bit-rot test. */
  corrupt?(store: ChunkStore, address: ChunkAddress): Promise<void>;
  /** Cut the stored copy short. Enables the truncation test. */
  truncate?(store: ChunkStore, address: ChunkAddress): Promise<void>;
  /** Close `store` and open the same backing storage again. Enables the persistence test. */
  reopen?(store: ChunkStore): Promise<ChunkStore>;
}

const bytes = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const rejectsNamed = (promise: Promise<unknown>, name: string) => expect(promise).rejects.toMatchObject({ name });

export function chunkStoreConformance(name: string, options: ChunkStoreConformanceOptions): void {
  describe(`${name}: ChunkStore conformance`, () => {
    let store: ChunkStore;
    beforeEach(async () => {
      store = await options.setup();
    });
    afterEach(async () => {
      await options.teardown(store);
    });

    it('put returns the CIDv1 raw sha2-256 address of the bytes', async () => {
      const data = bytes(1000);
      const address = await store.put(data);
      expect(address.version).toBe(1);
      expect(address.code).toBe(0x55);
      expect(address.multihash.code).toBe(0x12);
      expect(address.equals(addressOf(data))).toBe(true);
      const { digest } = await sha256.digest(data);
      expect(address.multihash.digest).toEqual(digest);
    });

    it('put is idempotent: the same bytes give the same address, stored once', async () => {
      const data = bytes(4096);
      const first = await store.put(data);
      const second = await store.put(data.slice());
      expect(second.equals(first)).toBe(true);
      expect(await store.get(first)).toEqual(data);
      if (store.features.list) expect((await collect(store.list())).map(String)).toEqual([first.toString()]);
    });

    it('get returns exactly the bytes put, including an empty chunk and every byte value', async () => {
      const every = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      for (const data of [new Uint8Array(0), every, bytes(1), bytes(65_537)]) {
        const address = await store.put(data);
        const back = await store.get(address);
        expect(back).toBeInstanceOf(Uint8Array);
        expect(back).toEqual(data);
      }
    });

    it('get of a missing address throws NotFoundError; has answers false', async () => {
      const missing = addressOf(bytes(32));
      await rejectsNamed(store.get(missing), 'NotFoundError');
      expect(await store.has(missing)).toBe(false);
    });

    it('has answers true once put', async () => {
      const address = await store.put(bytes(10));
      expect(await store.has(address)).toBe(true);
    });

    it('round-trips a 4 MiB chunk', async () => {
      const data = bytes(4 * 1024 * 1024);
      const address = await store.put(data);
      expect(Buffer.from(await store.get(address)).equals(Buffer.from(data))).toBe(true);
    });

    it('rejects a chunk over MAX_CHUNK_BYTES with InvalidInputError', async () => {
      await rejectsNamed(store.put(new Uint8Array(MAX_CHUNK_BYTES + 1)), 'InvalidInputError');
    });

    it('rejects an address that is not CIDv1/raw/sha2-256 with InvalidInputError', async () => {
      const data = bytes(16);
      const wrongCodec = CID.create(1, json.code, await sha256.digest(data));
      const wrongHash = CID.create(1, 0x55, identity.digest(data));
      const v0 = CID.createV0(await sha256.digest(data));
      for (const address of [wrongCodec, wrongHash, v0] as unknown as ChunkAddress[]) {
        await rejectsNamed(store.get(address), 'InvalidInputError');
        await rejectsNamed(store.has(address), 'InvalidInputError');
        await rejectsNamed(store.delete(address), 'InvalidInputError');
      }
    });

    it('owns its bytes: mutating the put or got buffer changes nothing stored', async () => {
      const data = bytes(100);
      const original = data.slice();
      const address = await store.put(data);
      data.fill(0);
      const got = await store.get(address);
      expect(got).toEqual(original);
      got.fill(1);
      expect(await store.get(address)).toEqual(original);
    });

    it('many concurrent puts of the same bytes all resolve to one intact chunk', async () => {
      const data = bytes(256 * 1024);
      const addresses = await Promise.all(Array.from({ length: 32 }, () => store.put(data)));
      for (const address of addresses) expect(address.equals(addresses[0]!)).toBe(true);
      expect(Buffer.from(await store.get(addresses[0]!)).equals(data)).toBe(true);
      if (store.features.list) expect(await collect(store.list())).toHaveLength(1);
    });

    it('concurrent puts of different bytes all land', async () => {
      const chunks = Array.from({ length: 40 }, (_, i) => bytes(1000 + i));
      const addresses = await Promise.all(chunks.map((c) => store.put(c)));
      const back = await Promise.all(addresses.map((a) => store.get(a)));
      expect(back).toEqual(chunks);
    });

    it('delete removes a chunk and is idempotent', async (ctx) => {
      if (!store.features.delete) ctx.skip();
      const address = await store.put(bytes(100));
      const kept = await store.put(bytes(100));
      await store.delete(address);
      expect(await store.has(address)).toBe(false);
      await rejectsNamed(store.get(address), 'NotFoundError');
      await store.delete(address);
      await store.delete(addressOf(bytes(5)));
      expect(await store.has(kept)).toBe(true);
      // A deleted chunk can be put again.
      expect(await store.has(await store.put((await store.get(kept)).slice()))).toBe(true);
    });

    it('list yields every stored address exactly once', async (ctx) => {
      if (!store.features.list) ctx.skip();
      expect(await collect(store.list())).toEqual([]);
      const want = new Set<string>();
      for (let i = 0; i < 50; i++) want.add((await store.put(bytes(64))).toString());
      await store.put(bytes(0)); // the empty chunk has an address like any other
      want.add(addressOf(new Uint8Array(0)).toString());
      const listed = (await collect(store.list())).map(String);
      expect(listed).toHaveLength(want.size);
      expect(new Set(listed)).toEqual(want);
    });

    it('list leaves out deleted chunks', async (ctx) => {
      if (!store.features.list || !store.features.delete) ctx.skip();
      const a = await store.put(bytes(10));
      const b = await store.put(bytes(10));
      await store.delete(a);
      expect((await collect(store.list())).map(String)).toEqual([b.toString()]);
    });

    it('every method throws AbortError for an aborted signal, and an aborted put stores nothing', async () => {
      const present = await store.put(bytes(10));
      const controller = new AbortController();
      controller.abort();
      const signal = controller.signal;
      const data = bytes(10);
      await rejectsNamed(store.put(data, { signal }), 'AbortError');
      expect(await store.has(addressOf(data))).toBe(false);
      await rejectsNamed(store.get(present, { signal }), 'AbortError');
      await rejectsNamed(store.has(present, { signal }), 'AbortError');
      await rejectsNamed(store.delete(present, { signal }), 'AbortError');
      expect(await store.has(present)).toBe(true);
      await rejectsNamed(collect(store.list({ signal })), 'AbortError');
      if (store.usage) await rejectsNamed(store.usage({ signal }), 'AbortError');
    });

    it('usage counts chunks and ciphertext bytes', async (ctx) => {
      if (!store.usage) ctx.skip();
      expect(await store.usage!()).toEqual({ chunks: 0, bytes: 0 });
      const a = await store.put(bytes(1000));
      await store.put(bytes(24));
      await store.put(bytes(24).fill(7));
      await store.put(bytes(24).fill(7)); // idempotent: counted once
      expect(await store.usage!()).toEqual({ chunks: 3, bytes: 1048 });
      if (store.features.delete) {
        await store.delete(a);
        expect(await store.usage!()).toEqual({ chunks: 2, bytes: 48 });
      }
    });

    it('get of a chunk whose bytes rotted throws IntegrityError naming the address', async (ctx) => {
      if (!options.corrupt) ctx.skip();
      // A small chunk is hashed inline, a large one may be on a thread (src/crypto/offload.ts).
      for (const size of [5000, 300 * 1024]) {
        const address = await store.put(bytes(size));
        await options.corrupt!(store, address);
        const err = await store.get(address).catch((e: unknown) => e);
        expect(err).toMatchObject({ name: 'IntegrityError', storageIndex: address.toString() });
      }
    });

    it('a truncated chunk is IntegrityError, never a short result', async (ctx) => {
      if (!options.truncate) ctx.skip();
      const address = await store.put(bytes(5000));
      await options.truncate!(store, address);
      await rejectsNamed(store.get(address), 'IntegrityError');
    });

    describe('getInto (a store that offers it)', () => {
      // With the offload threads ready, a large chunk in shared memory takes the thread path (the local
      // packs read and hash it there in one hop); before, it is read and hashed on this thread.
      beforeAll(startOffloadThreads);

      /** A target of `n` bytes, in shared memory (a reader's slot) or not, at a non-zero offset of its buffer. */
      const target = (n: number, shared: boolean): Uint8Array => {
        const memory = shared ? new SharedArrayBuffer(n + 8) : new ArrayBuffer(n + 8);
        return new Uint8Array(memory, 8, n).fill(0xee);
      };

      it('reads exactly the bytes put into the start of the target, and answers that view', async (ctx) => {
        if (!store.getInto) ctx.skip();
        // A small chunk is hashed inline; a large one in shared memory on a thread (src/crypto/offload.ts).
        for (const size of [0, 5000, 300 * 1024]) {
          const data = bytes(size);
          const address = await store.put(data);
          for (const shared of [false, true]) {
            const into = target(size + 100, shared);
            const got = await store.getInto!(address, into);
            expect(got).toBeDefined();
            expect(got!.buffer).toBe(into.buffer);
            expect(got!.byteOffset).toBe(into.byteOffset);
            expect(Buffer.from(got!).equals(Buffer.from(data))).toBe(true);
            // Nothing past the chunk is written.
            expect(into.subarray(size).every((b) => b === 0xee)).toBe(true);
          }
        }
      });

      it('answers undefined for a target shorter than the chunk; a later get still reads it', async (ctx) => {
        if (!store.getInto) ctx.skip();
        const data = bytes(5000);
        const address = await store.put(data);
        expect(await store.getInto!(address, target(4999, true))).toBeUndefined();
        expect(await store.get(address)).toEqual(data);
      });

      it("throws get's errors: NotFoundError, InvalidInputError, AbortError", async (ctx) => {
        if (!store.getInto) ctx.skip();
        await rejectsNamed(store.getInto!(addressOf(bytes(10)), target(10, true)), 'NotFoundError');
        const wrongCodec = CID.create(1, json.code, await sha256.digest(bytes(4))) as unknown as ChunkAddress;
        await rejectsNamed(store.getInto!(wrongCodec, target(10, true)), 'InvalidInputError');
        const address = await store.put(bytes(10));
        const aborted = AbortSignal.abort();
        await rejectsNamed(store.getInto!(address, target(10, true), { signal: aborted }), 'AbortError');
      });

      it('a chunk whose bytes rotted is IntegrityError naming the address, in shared memory or not', async (ctx) => {
        if (!store.getInto || !options.corrupt) ctx.skip();
        for (const size of [5000, 300 * 1024]) {
          const address = await store.put(bytes(size));
          await options.corrupt!(store, address);
          for (const shared of [false, true]) {
            const err = await store.getInto!(address, target(size, shared)).catch((e: unknown) => e);
            expect(err).toMatchObject({ name: 'IntegrityError', storageIndex: address.toString() });
          }
        }
      });

      it('a truncated chunk is IntegrityError, never a short result', async (ctx) => {
        if (!store.getInto || !options.truncate) ctx.skip();
        const address = await store.put(bytes(5000));
        await options.truncate!(store, address);
        await rejectsNamed(store.getInto!(address, target(5000, true)), 'IntegrityError');
      });
    });

    describe('prefetch (a store that offers it): a hint that never changes an answer', () => {
      /** Puts, made durable and indexed where the store defers that (flush). */
      const stored = async (...chunks: Uint8Array[]): Promise<ChunkAddress[]> => {
        const addresses = await Promise.all(chunks.map((c) => store.put(c)));
        await store.flush?.();
        return addresses;
      };
      /** Lets a hint's lookup run before what follows. */
      const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

      it('hinted chunks read exactly as put, through get and getInto, in any order and twice', async (ctx) => {
        if (!store.prefetch) ctx.skip();
        const chunks = [bytes(100), bytes(5000), bytes(300 * 1024), bytes(7)];
        const addresses = await stored(...chunks);
        store.prefetch!([...addresses, addresses[0]!]);
        await settle();
        for (const i of [2, 0, 3, 1, 0]) expect(Buffer.from(await store.get(addresses[i]!)).equals(chunks[i]!)).toBe(true);
        store.prefetch!(addresses);
        const into = new Uint8Array(new SharedArrayBuffer(300 * 1024));
        if (store.getInto) expect(Buffer.from((await store.getInto(addresses[2]!, into))!).equals(chunks[2]!)).toBe(true);
      });

      it('a hint does not hide a put or a delete that came after it, nor answer for a missing chunk', async (ctx) => {
        if (!store.prefetch) ctx.skip();
        const [kept, doomed] = await stored(bytes(900), bytes(901));
        const later = bytes(902);
        const missing = addressOf(bytes(903));
        store.prefetch!([kept!, doomed!, addressOf(later), missing]);
        await settle();
        if (store.features.delete) {
          await store.delete(doomed!);
          await rejectsNamed(store.get(doomed!), 'NotFoundError');
          expect(await store.has(doomed!)).toBe(false);
        }
        await stored(later);
        expect(Buffer.from(await store.get(addressOf(later))).equals(later)).toBe(true);
        await rejectsNamed(store.get(missing), 'NotFoundError');
        expect(await store.has(kept!)).toBe(true);
      });

      it('a hinted chunk whose bytes rotted is IntegrityError naming the address', async (ctx) => {
        if (!store.prefetch || !options.corrupt) ctx.skip();
        const [address, other] = await stored(bytes(5000), bytes(5001));
        await options.corrupt!(store, address!);
        store.prefetch!([address!, other!]);
        await settle();
        await expect(store.get(address!)).rejects.toMatchObject({ name: 'IntegrityError', storageIndex: address!.toString() });
      });

      it('ignores what is not a chunk address, and never throws', async (ctx) => {
        if (!store.prefetch) ctx.skip();
        const [address] = await stored(bytes(50));
        const wrongCodec = CID.createV1(json.code, await sha256.digest(bytes(3)));
        store.prefetch!([wrongCodec, null as unknown as ChunkAddress, address!, address!]);
        store.prefetch!([]);
        await settle();
        expect((await store.get(address!)).length).toBe(50);
      });
    });

    it('chunks survive closing and reopening the store', async (ctx) => {
      if (!options.reopen) ctx.skip();
      const data = bytes(3000);
      const address = await store.put(data);
      store = await options.reopen!(store);
      expect(await store.get(address)).toEqual(data);
    });
  });
}
