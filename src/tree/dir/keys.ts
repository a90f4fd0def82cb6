import { DirectoryWriteCap, type DirectoryCap } from '../../cap/index.js';
import { BoundedCache } from '../../util/bounded-cache.js';
import { TAG, taggedHash, taggedHmac, type SigningKey } from '../../crypto/index.js';

/**
 * Every key a directory view needs, derived once from its cap.
 *
 *   W (write secret, 32 random bytes)
 *   ├─ signing seed = H(dirSigningSeed, W) → Ed25519 (private, public P)
 *   ├─ R  = H(dirReadKey, W)                  read key
 *   │   ├─ Kn = H(dirNodeKey, R)              seals every node blob
 *   │   └─ Kh = H(dirNameHashKey, R)          keys the name hash
 *   └─ Kc = H(dirChildWriteCapKey, W)         seals child write secrets
 *   SI = H(dirStorageIndex, P)                the public slot key
 *
 * H is taggedHash (src/crypto/kdf.ts). Kc hangs off W, not R, which is what
 * makes read access transitively read-only: a holder of R can open every
 * node but not one sealed child write secret.
 */
export class DirectoryKeys {
  readonly storageIndex: Uint8Array;
  /** Lower-case hex of the storage index: how errors and logs name a directory. */
  readonly siHex: string;
  readonly readKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly nodeKey: Uint8Array;
  private readonly nameHashKey: Uint8Array;
  /** Present only for a write cap. */
  readonly writer?: { signingKey: SigningKey; childCapKey: Uint8Array };
  /** A snapshot view's point in the slot history (docs/spec/snapshots.md); undefined: the current version. */
  readonly epoch: bigint | undefined;

  /** Recent names' hashes, by the name's bytes as latin1: one upload hashes its name four times or more (bound: NAME_HASHES_KEPT). */
  readonly #nameHashes = new BoundedCache<string, Uint8Array>(NAME_HASHES_KEPT);
  /** A write view's Kc as latin1, the start of childWriteCap's ids (made once, not per request). */
  readonly #childCapIdPrefix: string | undefined;

  /**
   * The keys of `cap`, from a bounded per-process cache: every path walk and
   * directory update builds a handle from a freshly parsed cap, and deriving
   * these took five tagged hashes each time (about 2 % of a small upload's
   * CPU, with the name hashes below). The secrets are in this process's
   * memory anyway (as the signing keys cached in src/cap/caps.ts).
   */
  static of(cap: DirectoryCap): DirectoryKeys {
    let keys = keysByCap.get(cap);
    if (keys === undefined) {
      keys = keysCache.getOrSet(cacheId(cap), () => new DirectoryKeys(cap));
      keysByCap.set(cap, keys);
    }
    return keys;
  }

  constructor(cap: DirectoryCap) {
    this.readKey = cap.readonly().readKey;
    this.publicKey = cap.readonly().publicKey;
    this.epoch = cap.readonly().epoch;
    this.storageIndex = cap.storageIndex;
    this.siHex = cap.storageIndexHex;
    this.nodeKey = taggedHash(TAG.dirNodeKey, this.readKey);
    this.nameHashKey = taggedHash(TAG.dirNameHashKey, this.readKey);
    if (cap instanceof DirectoryWriteCap) {
      const childCapKey = taggedHash(TAG.dirChildWriteCapKey, cap.writeSecret);
      this.writer = { signingKey: cap.signingKey, childCapKey };
      this.#childCapIdPrefix = latin1(childCapKey);
    }
  }

  /**
   * Where a name lives in the HAMT: HMAC-SHA256 keyed by Kh over the name's
   * UTF-8 bytes, exactly as stored (no normalization). Keyed, so the tree's shape says nothing about names to
   * anyone without R; the HMAC tag is the key's own tag (taggedHmac needs one,
   * and the key already separates this use from every other).
   */
  nameHash(nameUtf8: Uint8Array): Uint8Array {
    const id = latin1(nameUtf8);
    return this.#nameHashes.getOrSet(id, () => taggedHmac(this.nameHashKey, TAG.dirNameHashKey, nameUtf8));
  }

  /**
   * The write cap of a child stored sealed under this write view (its read
   * key, public key and sealed write secret, as in its entry), unsealed by
   * `open` the first time only: a path walk through a writable subdirectory
   * unsealed it again for every request, three or four times per small
   * upload, each time a new cap whose storage index was hashed anew. The same
   * key and bytes always open to the same secret or always fail, so a
   * remembered cap is exactly as strong as opening again; a failure is not
   * remembered. The id holds every input of the opening: this view's Kc, the
   * sealed bytes, and the two keys that are their associated data.
   */
  childWriteCap(readKey: Uint8Array, publicKey: Uint8Array, sealed: Uint8Array, open: () => DirectoryWriteCap): DirectoryWriteCap {
    if (this.#childCapIdPrefix === undefined) throw new TypeError('only a write view unseals child write caps');
    const id = this.#childCapIdPrefix + latin1(sealed) + latin1(readKey) + latin1(publicKey);
    return childCaps.getOrSet(id, open);
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Bounds: 1024 directories' keys (about 1 KiB each), each with the hashes of
 * its last 8 names (at most some 450 bytes each, for a 255-byte name): under
 * 5 MiB in all. Eight covers the uploads running at once in one directory;
 * one upload's hashes of its own name follow each other closely.
 */
const NAME_HASHES_KEPT = 8;
/**
 * Child write caps kept for the whole process. Each holds its directory's
 * signing key once it has been written to, some 4.7 KiB resident with
 * OpenSSL's key (measured over 10,000), so the bound is the process's, not
 * each view's: at most about 1.2 MiB.
 */
export const CHILD_CAPS_KEPT = 256;
const KEYS_KEPT = 1024;
const keysCache = new BoundedCache<string, DirectoryKeys>(KEYS_KEPT);
/**
 * The keys found for a cap object, for as long as it lives: the caps a path
 * walk goes through are the same objects walk after walk (entries.ts), and
 * so skip keysCache's id (a base64 of the secret) and its reordering.
 */
const keysByCap = new WeakMap<DirectoryCap, DirectoryKeys>();
const childCaps = new BoundedCache<string, DirectoryWriteCap>(CHILD_CAPS_KEPT);

/** What tells two caps' keys apart: the write secret, or the read key, public key and epoch. */
function cacheId(cap: DirectoryCap): string {
  if (cap instanceof DirectoryWriteCap) return `w${Buffer.from(cap.writeSecret).toString('base64')}`;
  const read = cap.readonly();
  return `r${Buffer.from(read.readKey).toString('base64')}${Buffer.from(read.publicKey).toString('base64')}${read.epoch ?? ''}`;
}

/** `bits` bits of `hash` starting at bit `offset`, most significant bit first. */
export function hashBits(hash: Uint8Array, offset: number, bits: number): number {
  let value = 0;
  for (let i = 0; i < bits; i++) {
    const bit = offset + i;
    value = (value << 1) | ((hash[bit >> 3]! >> (7 - (bit & 7))) & 1);
  }
  return value;
}

/** Bits in a name hash: a HAMT never goes deeper than this. */
export const NAME_HASH_BITS = 256;
