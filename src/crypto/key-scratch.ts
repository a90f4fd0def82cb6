/**
 * Hands node:crypto a key from memory allocated once, instead of the
 * caller's array.
 *
 * Why: a typed array of up to 64 bytes made by `new Uint8Array(n)` lives on
 * V8's heap, and passing one to node:crypto moves it to memory of its own
 * (a malloc, and later a free when the collector sweeps it). capstan's keys
 * are such arrays (derived, then copied out of the digest), and a small
 * upload opens or creates some thirty ciphers and HMACs with them.
 *
 * `use` must make its cipher or HMAC at once, synchronously: node:crypto
 * copies the key into OpenSSL, and the scratch is zeroed as soon as `use`
 * returns. Keys longer than the scratch are passed as they are.
 */
const SCRATCH = new Uint8Array(new ArrayBuffer(64));
const SCRATCH_32 = SCRATCH.subarray(0, 32);

export function withKey<T>(key: Uint8Array, use: (key: Uint8Array) => T): T {
  if (key.length > SCRATCH.length) return use(key);
  const copy = key.length === 32 ? SCRATCH_32 : SCRATCH.subarray(0, key.length);
  copy.set(key);
  try {
    return use(copy);
  } finally {
    copy.fill(0);
  }
}
