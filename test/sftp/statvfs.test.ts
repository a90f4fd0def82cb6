import { describe, expect, it } from 'vitest';
import { statvfsFor } from '../../src/sftp/extensions.js';
import type { UserTree } from '../../src/sftp/user-tree.js';

/** statvfs as `df` reads it: the quota is the size, what it leaves is free (extensions.ts). */
const writable = { writable: true } as UserTree;
const readOnly = { writable: false } as UserTree;
const usage = (bytes: number, files: number) => ({ bytes, files, countedAt: 0 });

describe('statvfsFor', () => {
  it('without a quota: 1 PiB and 2^32 inodes, all free', () => {
    const s = statvfsFor(writable);
    expect([s.frsize, s.blocks, s.bfree, s.bavail]).toEqual([4096, 2n ** 38n, 2n ** 38n, 2n ** 38n]);
    expect([s.files, s.ffree, s.favail]).toEqual([2n ** 32n, 2n ** 32n, 2n ** 32n]);
    expect(s.flag & 1).toBe(0);
    expect(statvfsFor(readOnly).flag & 1).toBe(1);
  });

  it('under a quota: the quota is the size, what is left of it is free', () => {
    const s = statvfsFor(writable, { quota: { bytes: 64 * 1024, files: 10 }, usage: usage(40 * 1024, 3) });
    expect([s.blocks, s.bfree, s.bavail]).toEqual([16n, 6n, 6n]);
    expect([s.files, s.ffree, s.favail]).toEqual([10n, 7n, 7n]);
  });

  it('rounds the size up and what is free down, so df never shows room that is not there', () => {
    const s = statvfsFor(writable, { quota: { bytes: 10_000 }, usage: usage(5_000, 1) });
    expect(s.blocks).toBe(3n); // 12 KiB for 10,000 bytes
    expect(s.bfree).toBe(1n); // 5,000 bytes left: one whole block
  });

  it('a usage past the quota (the quota lowered below it) leaves nothing free, never a negative count', () => {
    const s = statvfsFor(writable, { quota: { bytes: 8192, files: 2 }, usage: usage(1 << 20, 5) });
    expect([s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail]).toEqual([2n, 0n, 0n, 2n, 0n, 0n]);
  });

  it('a limit not set stays unlimited, less what is used', () => {
    const files = statvfsFor(writable, { quota: { files: 100 }, usage: usage(1 << 20, 4) });
    expect([files.blocks, files.bfree]).toEqual([2n ** 38n, 2n ** 38n - 256n]);
    expect([files.files, files.ffree]).toEqual([100n, 96n]);
    const bytes = statvfsFor(writable, { quota: { bytes: 1 << 20 }, usage: usage(4096, 4) });
    expect([bytes.blocks, bytes.bfree]).toEqual([256n, 255n]);
    expect([bytes.files, bytes.ffree]).toEqual([2n ** 32n, 2n ** 32n - 4n]);
  });
});
