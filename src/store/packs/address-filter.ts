/**
 * A Bloom filter over object addresses: "certainly not stored" without a
 * database lookup. Nearly every put is of an object the index does not hold
 * (a new chunk, manifest or directory node), and its deduplication check
 * was one LevelDB get each, about a tenth of the gateway's CPU on small
 * uploads (docs/benchmarks.md). The filter answers those misses in memory.
 *
 * Addresses are SHA-256 digests, already uniform, so the k probe positions
 * come from the digest's first 8 bytes by double hashing. Never a false
 * "absent"; a false "maybe" (about 1 % at capacity with 10 bits and 7
 * probes per object) only costs the lookup it would have cost anyway.
 * Nothing is ever removed: a deleted object's bits stay, which is a false
 * "maybe" again.
 *
 * Bounds: `bits` / 8 bytes, fixed at construction; 10 bits per object up to
 * `capacity`, at most 2^30 bits (128 MiB, about 100 million objects);
 * beyond its capacity the false "maybe" rate climbs (the owner
 * rebuilds a larger one, see level-index.ts).
 */
export class AddressFilter {
  readonly #words: Uint32Array;
  readonly #mask: number;
  /** Objects it was sized for. */
  readonly capacity: number;
  /** Objects added (overwrites of one address count again: an upper bound). */
  added = 0;

  static readonly BITS_PER_OBJECT = 10;
  static readonly PROBES = 7;

  /** A filter for at least `capacity` objects (rounded up to a power of two of bits). */
  constructor(capacity: number) {
    let bits = 1 << 16;
    while (bits < capacity * AddressFilter.BITS_PER_OBJECT && bits < 2 ** 30) bits *= 2;
    this.#words = new Uint32Array(bits / 32);
    this.#mask = bits - 1;
    this.capacity = Math.floor(bits / AddressFilter.BITS_PER_OBJECT);
  }

  get bytes(): number {
    return this.#words.byteLength;
  }

  /** `digest`: the address's SHA-256 digest (at least its first 8 bytes, from `offset`); `count`: false for a repeat add. */
  add(digest: Uint8Array, offset = 0, count = true): void {
    if (count) this.added++;
    this.#probe(digest, offset, true);
  }

  mayHold(digest: Uint8Array, offset = 0): boolean {
    return this.#probe(digest, offset, false);
  }

  #probe(d: Uint8Array, o: number, set: boolean): boolean {
    const h1 = (d[o]! | (d[o + 1]! << 8) | (d[o + 2]! << 16) | (d[o + 3]! << 24)) >>> 0;
    // Odd, so the probes of one address never repeat a position (the table size is a power of two).
    const h2 = (d[o + 4]! | (d[o + 5]! << 8) | (d[o + 6]! << 16) | (d[o + 7]! << 24) | 1) >>> 0;
    for (let i = 0; i < AddressFilter.PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.#mask;
      const word = bit >>> 5;
      const flag = 1 << (bit & 31);
      if (set) this.#words[word]! |= flag;
      else if ((this.#words[word]! & flag) === 0) return false;
    }
    return true;
  }
}
