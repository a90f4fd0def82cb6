import { describe, expect, it } from 'vitest';
import { DirectoryWriteCap, parseCap } from '../../src/cap/index.js';
import { TAG, randomBytes, taggedHmac, taggedHash } from '../../src/crypto/index.js';
import { IntegrityError } from '../../src/errors.js';
import { storeCap, viewCap } from '../../src/tree/dir/entries.js';
import { DirectoryKeys } from '../../src/tree/dir/keys.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('DirectoryKeys', () => {
  it('of() gives one set of keys per directory and view, whichever cap object names it', () => {
    const write = new DirectoryWriteCap(randomBytes(32));
    const again = parseCap(write.toString());
    expect(DirectoryKeys.of(again as DirectoryWriteCap)).toBe(DirectoryKeys.of(write));
    const read = DirectoryKeys.of(write.readonly());
    expect(read).not.toBe(DirectoryKeys.of(write));
    expect(read.writer).toBeUndefined();
    expect(DirectoryKeys.of(write).writer).toBeDefined();
    const snapshot = DirectoryKeys.of(write.readonly().at(7n));
    expect(snapshot.epoch).toBe(7n);
    expect(read.epoch).toBeUndefined();
    expect(hex(snapshot.storageIndex)).toBe(hex(read.storageIndex));
    // A different directory never shares keys.
    expect(hex(DirectoryKeys.of(new DirectoryWriteCap(randomBytes(32))).storageIndex)).not.toBe(hex(read.storageIndex));
  });

  it('every directory cap names its storage index in hex, the same for all its views', () => {
    const write = new DirectoryWriteCap(randomBytes(32));
    for (const cap of [write, write.readonly(), write.readonly().at(3n), write.verifier()]) {
      expect(cap.storageIndexHex).toBe(hex(write.storageIndex));
      expect(cap.storageIndexHex).toBe(DirectoryKeys.of(write).siHex);
    }
  });

  it('a child write cap is unsealed once per stored bytes, and bytes that do not open never open', () => {
    const parent = DirectoryKeys.of(new DirectoryWriteCap(randomBytes(32)));
    const child = new DirectoryWriteCap(randomBytes(32));
    const stored = storeCap(parent, child, () => randomBytes(24));
    if (stored.kind !== 'dir-write') throw new Error('expected a sealed child');
    const first = viewCap(parent, stored, 'node');
    expect(first).toBeInstanceOf(DirectoryWriteCap);
    expect(first.toString()).toBe(child.toString());
    expect(viewCap(parent, { ...stored }, 'node')).toBe(first);
    // The same stored object through the same view: the same cap, and the same keys for it, by identity.
    expect(viewCap(parent, stored, 'node')).toBe(first);
    expect(DirectoryKeys.of(first as DirectoryWriteCap)).toBe(DirectoryKeys.of(first as DirectoryWriteCap));
    expect(DirectoryKeys.of(first as DirectoryWriteCap).siHex).toBe(child.storageIndexHex);
    // The same sealed secret under another entry's read cap (its associated data), and a flipped bit: never the remembered cap.
    const other = new DirectoryWriteCap(randomBytes(32)).readonly();
    const moved = { ...stored, readKey: other.readKey, publicKey: other.publicKey };
    const flipped = { ...stored, sealedWriteSecret: stored.sealedWriteSecret.slice() };
    flipped.sealedWriteSecret[30]! ^= 1;
    for (let round = 0; round < 2; round++) {
      expect(() => viewCap(parent, moved, 'node')).toThrow(IntegrityError);
      expect(() => viewCap(parent, flipped, 'node')).toThrow(IntegrityError);
    }
    // Another parent's view does not share what this one unsealed (it cannot open it at all).
    expect(() => viewCap(DirectoryKeys.of(new DirectoryWriteCap(randomBytes(32))), stored, 'node')).toThrow(IntegrityError);
    // A read view hands out the read cap and unseals nothing.
    expect(viewCap(DirectoryKeys.of(other), stored, 'node')).not.toBeInstanceOf(DirectoryWriteCap);
  });

  it('the remembered name hashes are the HMACs, for more names than it keeps and for views into larger buffers', () => {
    const cap = new DirectoryWriteCap(randomBytes(32));
    const keys = DirectoryKeys.of(cap);
    const nameHashKey = taggedHash(TAG.dirNameHashKey, cap.readKey);
    const expected = (name: Uint8Array) => hex(taggedHmac(nameHashKey, TAG.dirNameHashKey, name));
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 200; i++) {
        const padded = Buffer.from(`..file-${i}-é..`);
        const name = padded.subarray(2, padded.length - 2);
        expect(hex(keys.nameHash(name))).toBe(expected(name));
      }
    }
    // Names that differ only in bytes above 0x7f, or in length, stay apart.
    const a = Uint8Array.of(0xc3, 0xa9);
    const b = Uint8Array.of(0xc3, 0xa8);
    expect(hex(keys.nameHash(a))).toBe(expected(a));
    expect(hex(keys.nameHash(b))).toBe(expected(b));
    expect(hex(keys.nameHash(Uint8Array.of(0)))).toBe(expected(Uint8Array.of(0)));
    expect(hex(keys.nameHash(Uint8Array.of(0, 0)))).toBe(expected(Uint8Array.of(0, 0)));
  });
});
