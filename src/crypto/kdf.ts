import { createHash, createHmac } from 'node:crypto';
import type { Tag } from './tags.js';

/** Tahoe-style netstring: `<decimal length>:<bytes>,`. Makes concatenations unambiguous. */
export function netstring(bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${bytes.length}:`), bytes, Buffer.from(',')]);
}

const encoder = new TextEncoder();

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/**
 * SHA-256 over netstring(tag) followed by netstring(part) for each part.
 * Used to derive public values and keys from other keys (one-way: a read key
 * from a write secret, never the reverse).
 */
export function taggedHash(tag: Tag, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  h.update(netstring(encoder.encode(tag)));
  for (const p of parts) h.update(netstring(p));
  return new Uint8Array(h.digest());
}

/** HMAC-SHA256 keyed by `key` over netstring(tag) followed by netstring(part) for each part. */
export function taggedHmac(key: Uint8Array, tag: Tag, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  h.update(netstring(encoder.encode(tag)));
  for (const p of parts) h.update(netstring(p));
  return new Uint8Array(h.digest());
}

export function u64be(n: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}
