import type { CapBase } from './cap-base.js';

/** Longest link target, in bytes: Linux's PATH_MAX less its terminating NUL. */
export const MAX_SYMLINK_TARGET_BYTES = 4095;

/**
 * A symbolic link as a directory entry holds it (docs/spec/directories.md,
 * Symbolic links). It is not a capability: it grants nothing and holds no
 * data. It rides in the entry's cap position because a node stores exactly
 * one of {cap, link target} per entry, and every layer that walks entries
 * (gc, check, quotas, events) then sees a kind it does not follow, as with
 * an unknown cap. It never parses from a string and is never stored as one.
 */
export class SymlinkTarget implements CapBase {
  readonly kind = 'symlink';
  readonly isDirectory = false;
  readonly isWritable = false;
  readonly isReadable = false;
  readonly target: Uint8Array;

  /** Throws RangeError for an empty target, one over the bound, or one holding NUL. */
  constructor(target: Uint8Array) {
    if (!isValidSymlinkTarget(target)) throw new RangeError('bad symbolic link target');
    this.target = target.slice();
  }

  readonly(): SymlinkTarget {
    return this;
  }

  /** Identity for compare-and-set of entries (two links with one target are equal, like two names of one file). */
  toString(): string {
    return `symlink:${Buffer.from(this.target).toString('hex')}`;
  }
}

export function isValidSymlinkTarget(target: Uint8Array): boolean {
  return target.length >= 1 && target.length <= MAX_SYMLINK_TARGET_BYTES && !target.includes(0);
}
