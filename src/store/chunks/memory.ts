import { InvalidInputError, NotFoundError, throwIfAborted, type AbortOptions } from '../../errors.js';
import { addressOf, assertChunkAddress, MAX_CHUNK_BYTES, parseAddress, verifyChunk } from '../address.js';
import type { ChunkAddress, ChunkStore, ChunkStoreFeatures } from './chunk-store.js';

/**
 * A real chunk store in process memory, for tests, demos and as the reference
 * the conformance suite is written against.
 *
 * It holds its own copies: put copies the caller's buffer and get hands out a
 * fresh copy, so no caller can change stored bytes after the fact. It still
 * re-hashes on get like every other store, so code that is only ever tested
 * against memory does not come to rely on a store that cannot fail integrity.
 *
 * Bound: memory grows with what is stored; that is the point of it. Each
 * chunk is at most MAX_CHUNK_BYTES.
 */
export class MemoryChunkStore implements ChunkStore {
  readonly features: ChunkStoreFeatures = { delete: true, list: true };
  /** base32 CID string → bytes. Private, but tests reach in to simulate rot. */
  private readonly chunks = new Map<string, Uint8Array>();

  async put(bytes: Uint8Array, options: AbortOptions = {}): Promise<ChunkAddress> {
    throwIfAborted(options.signal);
    if (bytes.length > MAX_CHUNK_BYTES) {
      throw new InvalidInputError(`chunk of ${bytes.length} bytes exceeds ${MAX_CHUNK_BYTES}`);
    }
    const address = addressOf(bytes);
    const key = address.toString();
    if (!this.chunks.has(key)) this.chunks.set(key, Uint8Array.from(bytes));
    return address;
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const stored = this.chunks.get(address.toString());
    if (stored === undefined) throw new NotFoundError(`no chunk ${address.toString()}`);
    verifyChunk(address, stored);
    return Uint8Array.from(stored);
  }

  async has(address: ChunkAddress, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    return this.chunks.has(address.toString());
  }

  async delete(address: ChunkAddress, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    this.chunks.delete(address.toString());
  }

  async *list(options: AbortOptions = {}): AsyncIterable<ChunkAddress> {
    throwIfAborted(options.signal);
    // Map iteration tolerates deletes and sees inserts made during the walk,
    // so a concurrent put or delete never breaks a list in progress.
    for (const key of this.chunks.keys()) {
      throwIfAborted(options.signal);
      yield parseAddress(key);
    }
  }

  async usage(options: AbortOptions = {}): Promise<{ chunks: number; bytes: number }> {
    throwIfAborted(options.signal);
    let bytes = 0;
    for (const chunk of this.chunks.values()) bytes += chunk.length;
    return { chunks: this.chunks.size, bytes };
  }

  async close(): Promise<void> {
    // Nothing held outside the heap; the contents stay readable so a test can
    // close and keep inspecting, as with a directory left on disk.
  }
}
