/**
 * Chunk-sized buffers in shared memory, reused from upload to upload.
 *
 * Why: a 1 GiB upload used to allocate three fresh 1 MiB buffers per chunk on
 * the event loop's isolate (the chunk handed back by the seal worker, its
 * ciphertext, the store's copy). Each lived a few milliseconds, long enough
 * to be promoted, and V8 starts a full mark-compact whenever such external
 * memory grows by 64 MiB: about 160 full collections per GiB, which kept
 * V8's four GC helper threads busy for more CPU time than all the hashing.
 * A slot is a SharedArrayBuffer: the seal worker reads the plaintext from
 * one and writes the ciphertext into another, so a chunk crosses threads
 * without a transfer and without a new buffer.
 *
 * A slot MUST be given back only once no thread reads or writes it any more
 * (after the seal request or the store's put has settled).
 *
 * Readers take them too (reader.ts): a download's chunks are read into a
 * slot, checked and decrypted there, and copied out of it into each reply.
 *
 * Bounds: slots in use are bounded by their holders (a file writer holds at
 * most concurrency + 2, a reader READ_CACHE_CHUNKS and the few a read in
 * progress still copies out of); at most MAX_FREE_SLOTS free ones per size
 * are kept, the rest are dropped for the GC.
 */
export interface ChunkSlot {
  readonly memory: SharedArrayBuffer;
  /** The whole slot as a Buffer (length = the slot's size). */
  readonly bytes: Buffer;
}

export const MAX_FREE_SLOTS = 12;

const free = new Map<number, ChunkSlot[]>();

export function takeSlot(size: number): ChunkSlot {
  const slot = free.get(size)?.pop();
  if (slot) return slot;
  const memory = new SharedArrayBuffer(size);
  return { memory, bytes: Buffer.from(memory) };
}

export function giveSlot(slot: ChunkSlot): void {
  const size = slot.memory.byteLength;
  let list = free.get(size);
  if (!list) free.set(size, (list = []));
  if (list.length < MAX_FREE_SLOTS && !list.includes(slot)) list.push(slot);
}
