/**
 * Raises glibc malloc's trim threshold once, at start, so that the memory
 * the read path frees is reused rather than given back and faulted in again.
 *
 * Why: glibc gives the top of a heap back to the kernel on free() once it
 * exceeds the trim threshold, 128 KiB until the process frees a block it
 * had mapped on its own (one of 128 KiB or more), which raises the
 * threshold to twice that block. Decrypting a chunk on an offload thread
 * allocates some 1 MiB of small buffers (update()'s output, in 16 KiB
 * pieces, src/crypto/offload.worker.ts), freed together by the collection
 * after it. Until the threshold rose, each chunk's were given back and
 * faulted in anew: 256 page faults a chunk. Whether it rose before the
 * first download depended on what the gateway had happened to free. Over
 * 11 restarts of a demo gateway, each then serving warm 1 GiB gets to
 * OpenSSH's sftp, 5 started that way: the offload thread took some 214,000
 * minor faults and 4.0–5.6 CPU-s a get instead of 150–1,200 and 1.3–1.6,
 * and the get took 4.7–6.2 s instead of 3.3–4.5. Freeing one 4 MiB block
 * at start, 0 of 11 did (test/node/malloc-thresholds.test.ts shows it in a
 * small process).
 *
 * The block is allocated outside the JavaScript heap (allocUnsafeSlow, a
 * malloc of its own above the mapping threshold) and freed by the full
 * collection `collect` runs (the gc() of `--expose-gc`, one of capstan's
 * node flags; without it, nothing is done). glibc then maps only blocks of
 * 4 MiB or more on their own and trims a heap's free top beyond 8 MiB,
 * which is what a gateway that had freed such a block by chance ran with.
 * Other allocators ignore it. Cost: one full collection at start.
 */
export const MALLOC_THRESHOLD_BLOCK_BYTES = 4 * 1024 * 1024;

/** Frees one block of MALLOC_THRESHOLD_BLOCK_BYTES through `collect`; false when there is no collect to call. */
export function raiseMallocThresholds(collect = (globalThis as { gc?: () => void }).gc): boolean {
  if (collect === undefined) return false;
  allocateBlock();
  collect();
  return true;
}

/** In a frame of its own, so that nothing keeps the block reachable by the collection. */
function allocateBlock(): void {
  Buffer.allocUnsafeSlow(MALLOC_THRESHOLD_BLOCK_BYTES).fill(0, 0, 1);
}
