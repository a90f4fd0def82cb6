import { randomFillSync } from 'node:crypto';

/** Requests up to this size are served from the pool; larger ones get a fill of their own. */
const POOLED_MAX_BYTES = 64;
const POOL_BYTES = 4096;

const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let poolUsed = POOL_BYTES;

/**
 * `n` bytes from node's CSPRNG, in a new Uint8Array of their own.
 *
 * Each randomFillSync call has a fixed cost (a crypto job set up and torn
 * down) whatever its size, and every directory write takes a fresh 24-byte
 * nonce: on the small-file benchmark (`npm run bench -- --only small
 * --cpu-prof DIR`) those calls were 2.4 % of the gateway's busy time,
 * some 45 µs per file. Small requests are therefore cut from a
 * 4 KiB block filled in one call; each byte of the block is handed out
 * once and overwritten with zeros as it is.
 */
export function randomBytes(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('randomBytes: n must be a non-negative integer');
  const out = new Uint8Array(n);
  if (n > POOLED_MAX_BYTES) {
    randomFillSync(out);
    return out;
  }
  if (poolUsed + n > POOL_BYTES) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  out.set(pool.subarray(poolUsed, poolUsed + n));
  pool.fill(0, poolUsed, poolUsed + n);
  poolUsed += n;
  return out;
}
