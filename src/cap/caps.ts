import { TAG, taggedHash, signingKeyFromSeed, type SigningKey } from '../crypto/index.js';
import { BoundedCache } from '../util/bounded-cache.js';
import { encodeBase32 } from './base32.js';
import type { CapBase } from './cap-base.js';
import type { SymlinkTarget } from './symlink.js';

/**
 * Capability kinds. A cap is the only authority in capstan: holding one is
 * being allowed to do what it names. Each class can derive only weaker caps
 * (write → read → verify), never the reverse; the derivations are one-way
 * tagged hashes (see src/crypto/tags.ts and docs/spec/caps.md).
 *
 * toString() is the canonical printed form; parse it back with parseCap()
 * from ./parse.ts. Printed caps are secrets: never log them.
 */

export const CAP_PREFIX = 'CS1';
/** Files up to this size are stored inside their cap (no chunk, no manifest). */
export const LITERAL_MAX_BYTES = 64;
/** Snapshot epochs are unsigned 64-bit, 0 excluded (docs/spec/snapshots.md). */
export const MAX_EPOCH = 2n ** 64n - 1n;

export class DirectoryWriteCap implements CapBase {
  readonly kind = 'dir-write';
  readonly isDirectory = true;
  readonly isWritable = true;
  readonly isReadable = true;
  #storageIndex?: Uint8Array;
  #storageIndexHex?: string;
  #signingKey?: SigningKey;
  #readKey?: Uint8Array;

  constructor(readonly writeSecret: Uint8Array) {
    if (writeSecret.length !== 32) throw new RangeError('directory write secret must be 32 bytes');
  }

  get signingKey(): SigningKey {
    return (this.#signingKey ??= cachedSigningKey(this.writeSecret));
  }
  get readKey(): Uint8Array {
    return (this.#readKey ??= taggedHash(TAG.dirReadKey, this.writeSecret));
  }
  get publicKey(): Uint8Array {
    return this.signingKey.publicKey;
  }
  get storageIndex(): Uint8Array {
    return (this.#storageIndex ??= storageIndexOf(this.publicKey));
  }
  /** The storage index in hex (public: it names the directory in maps, logs and errors). */
  get storageIndexHex(): string {
    return (this.#storageIndexHex ??= Buffer.from(this.storageIndex).toString('hex'));
  }
  readonly(): DirectoryReadCap {
    return new DirectoryReadCap(this.readKey, this.publicKey);
  }
  verifier(): DirectoryVerifyCap {
    return new DirectoryVerifyCap(this.publicKey);
  }
  toString(): string {
    return `${CAP_PREFIX}:DIR:${encodeBase32(this.writeSecret)}`;
  }
}

/**
 * Reads a directory: as it is now, or (with `epoch`, a `DIR-SNAP` cap) as it
 * was at a snapshot's point in the slot store's history, where every
 * directory under it resolves at the same point (docs/spec/snapshots.md).
 */
export class DirectoryReadCap implements CapBase {
  readonly kind = 'dir-read';
  readonly isDirectory = true;
  readonly isWritable = false;
  readonly isReadable = true;
  #storageIndex?: Uint8Array;
  #storageIndexHex?: string;

  constructor(
    readonly readKey: Uint8Array,
    readonly publicKey: Uint8Array,
    readonly epoch?: bigint,
  ) {
    if (readKey.length !== 32 || publicKey.length !== 32) throw new RangeError('directory read cap fields must be 32 bytes');
    if (epoch !== undefined && (epoch < 1n || epoch > MAX_EPOCH)) throw new RangeError('a snapshot epoch is in [1, 2^64)');
  }
  /** The same directory read at a snapshot's epoch (undefined: now). */
  at(epoch: bigint | undefined): DirectoryReadCap {
    return epoch === this.epoch ? this : new DirectoryReadCap(this.readKey, this.publicKey, epoch);
  }
  get storageIndex(): Uint8Array {
    return (this.#storageIndex ??= storageIndexOf(this.publicKey));
  }
  /** The storage index in hex (public: it names the directory in maps, logs and errors). */
  get storageIndexHex(): string {
    return (this.#storageIndexHex ??= Buffer.from(this.storageIndex).toString('hex'));
  }
  readonly(): DirectoryReadCap {
    return this;
  }
  verifier(): DirectoryVerifyCap {
    return new DirectoryVerifyCap(this.publicKey);
  }
  toString(): string {
    if (this.epoch !== undefined)
      return `${CAP_PREFIX}:DIR-SNAP:${encodeBase32(this.readKey)}:${encodeBase32(this.publicKey)}:${this.epoch}`;
    return `${CAP_PREFIX}:DIR-RO:${encodeBase32(this.readKey)}:${encodeBase32(this.publicKey)}`;
  }
}

/** Lets a checker find a directory's slot and check its signature; decrypts nothing. */
export class DirectoryVerifyCap implements CapBase {
  readonly kind = 'dir-verify';
  readonly isDirectory = true;
  readonly isWritable = false;
  readonly isReadable = false;
  #storageIndex?: Uint8Array;
  #storageIndexHex?: string;

  constructor(readonly publicKey: Uint8Array) {
    if (publicKey.length !== 32) throw new RangeError('directory verify key must be 32 bytes');
  }
  get storageIndex(): Uint8Array {
    return (this.#storageIndex ??= storageIndexOf(this.publicKey));
  }
  /** The storage index in hex (public: it names the directory in maps, logs and errors). */
  get storageIndexHex(): string {
    return (this.#storageIndexHex ??= Buffer.from(this.storageIndex).toString('hex'));
  }
  readonly(): DirectoryVerifyCap {
    return this;
  }
  toString(): string {
    return `${CAP_PREFIX}:DIR-V:${encodeBase32(this.publicKey)}`;
  }
}

/** An immutable file: the manifest key, the hash of the manifest ciphertext, and the size. */
export class FileReadCap implements CapBase {
  readonly kind = 'file-read';
  readonly isDirectory = false;
  readonly isWritable = false;
  readonly isReadable = true;
  #verifyKey?: Uint8Array;

  constructor(
    readonly manifestKey: Uint8Array,
    readonly manifestHash: Uint8Array,
    readonly size: number,
  ) {
    if (manifestKey.length !== 32 || manifestHash.length !== 32) throw new RangeError('file cap fields must be 32 bytes');
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('file size out of range');
  }
  get verifyKey(): Uint8Array {
    return (this.#verifyKey ??= taggedHash(TAG.manifestVerifyKey, this.manifestKey));
  }
  readonly(): FileReadCap {
    return this;
  }
  verifier(): FileVerifyCap {
    return new FileVerifyCap(this.verifyKey, this.manifestHash, this.size);
  }
  toString(): string {
    return `${CAP_PREFIX}:CHK:${encodeBase32(this.manifestKey)}:${encodeBase32(this.manifestHash)}:${this.size}`;
  }
}

/** Lets a checker or garbage collector find and hash-check every chunk of a file; decrypts no content. */
export class FileVerifyCap implements CapBase {
  readonly kind = 'file-verify';
  readonly isDirectory = false;
  readonly isWritable = false;
  readonly isReadable = false;

  constructor(
    readonly verifyKey: Uint8Array,
    readonly manifestHash: Uint8Array,
    readonly size: number,
  ) {
    if (verifyKey.length !== 32 || manifestHash.length !== 32) throw new RangeError('file verify cap fields must be 32 bytes');
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('file size out of range');
  }
  readonly(): FileVerifyCap {
    return this;
  }
  toString(): string {
    return `${CAP_PREFIX}:CHK-V:${encodeBase32(this.verifyKey)}:${encodeBase32(this.manifestHash)}:${this.size}`;
  }
}

/** A small file held entirely in its cap, the empty file included. */
export class LiteralCap implements CapBase {
  readonly kind = 'literal';
  readonly isDirectory = false;
  readonly isWritable = false;
  readonly isReadable = true;

  constructor(readonly data: Uint8Array) {
    if (data.length > LITERAL_MAX_BYTES) throw new RangeError(`literal caps hold at most ${LITERAL_MAX_BYTES} bytes`);
  }
  get size(): number {
    return this.data.length;
  }
  readonly(): LiteralCap {
    return this;
  }
  toString(): string {
    return `${CAP_PREFIX}:LIT:${encodeBase32(this.data)}`;
  }
}

/**
 * A cap string capstan does not understand (a later format, another system's
 * URI). Kept verbatim and passed through directory entries, so an older
 * gateway never destroys what a newer one wrote.
 */
export class UnknownCap implements CapBase {
  readonly kind = 'unknown';
  readonly isDirectory = false;
  readonly isWritable = false;
  readonly isReadable = false;

  constructor(readonly text: string) {}
  readonly(): UnknownCap {
    return this;
  }
  toString(): string {
    return this.text;
  }
}

export type DirectoryCap = DirectoryWriteCap | DirectoryReadCap;

/** A directory cap that can be listed (write or read; a verify cap cannot). The one place this test is written. */
export function isDirectoryCap(cap: unknown): cap is DirectoryCap {
  return cap instanceof DirectoryWriteCap || cap instanceof DirectoryReadCap;
}
export type FileCap = FileReadCap | LiteralCap;
/** What a directory entry holds: a cap, or (not a cap, see symlink.ts) a symbolic link. */
export type Cap =
  | DirectoryWriteCap
  | DirectoryReadCap
  | DirectoryVerifyCap
  | FileReadCap
  | FileVerifyCap
  | LiteralCap
  | UnknownCap
  | SymlinkTarget;

/**
 * Caps are parsed again for every directory entry and path walk, and turning
 * a seed into a node:crypto key pair costs about half a millisecond, more than
 * the rest of a small upload's directory update. A bounded per-process cache
 * (the secrets are in this process's memory anyway) makes it once per directory.
 */
const signingKeys = new BoundedCache<string, SigningKey>(1024);

function cachedSigningKey(writeSecret: Uint8Array): SigningKey {
  return signingKeys.getOrSet(Buffer.from(writeSecret).toString('base64'), () =>
    signingKeyFromSeed(taggedHash(TAG.dirSigningSeed, writeSecret)),
  );
}

/** The slot key of a directory: public, and derived from its verify key alone. */
export function storageIndexOf(publicKey: Uint8Array): Uint8Array {
  return taggedHash(TAG.dirStorageIndex, publicKey);
}
