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
  takeFromPool(out, 0, n);
  return out;
}

/**
 * randomFillSync(buffer, offset, size), with a small size served from the
 * same pool as randomBytes. What is not that form with a valid range goes
 * to randomFillSync itself, which answers or throws as it always does.
 * src/crypto/ssh2.ts gives it to ssh2 for the padding of every packet.
 */
export const randomFillPooled: typeof randomFillSync = (buffer, offset, size) => {
  if (
    buffer instanceof Uint8Array &&
    typeof offset === 'number' &&
    typeof size === 'number' &&
    Number.isSafeInteger(offset) &&
    Number.isSafeInteger(size) &&
    offset >= 0 &&
    size >= 0 &&
    size <= POOLED_MAX_BYTES &&
    offset + size <= buffer.length
  ) {
    takeFromPool(buffer, offset, size);
    pooledFills++;
    return buffer;
  }
  return randomFillSync(buffer, offset, size);
};

let pooledFills = 0;

/** How many randomFillPooled calls the pool served (tests: ssh2 was loaded with it). */
export function pooledFillCount(): number {
  return pooledFills;
}

/** Copies `n` fresh pool bytes into `out` at `at`, and zeroes them in the pool. */
function takeFromPool(out: Uint8Array, at: number, n: number): void {
  if (poolUsed + n > POOL_BYTES) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  out.set(pool.subarray(poolUsed, poolUsed + n), at);
  pool.fill(0, poolUsed, poolUsed + n);
  poolUsed += n;
}
