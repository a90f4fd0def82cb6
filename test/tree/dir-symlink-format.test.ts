import { describe, expect, it } from 'vitest';
import { LiteralCap, MAX_SYMLINK_TARGET_BYTES, SymlinkTarget } from '../../src/cap/index.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { decodeNode, encodeNode, type StoredEntry } from '../../src/tree/dir/node-format.js';
import { createTree } from '../../src/tree/index.js';
import { nameBytes } from '../../src/tree/names.js';

/** The symbolic-link entry kind (docs/spec/directories.md, Symbolic links): bounds and decoding rules. */

const meta = { size: 1, mtimeMs: 0, ctimeMs: 0 };
const entry = (target: Uint8Array): StoredEntry => ({
  name: 'l',
  nameUtf8: nameBytes('l'),
  cap: { kind: 'symlink', target },
  metadata: meta,
});

describe('symbolic link entries', () => {
  it('round-trip the target bytes exactly, up to the stated bound', () => {
    for (const target of [Uint8Array.of(0xff, 0x2f), new Uint8Array(MAX_SYMLINK_TARGET_BYTES).fill(0x61)]) {
      const node = decodeNode(encodeNode({ kind: 'bucket', entries: [entry(target)] }));
      expect(node.kind === 'bucket' && node.entries[0]?.cap).toEqual({ kind: 'symlink', target });
    }
  });

  it('a stored target that is empty, over the bound or holds NUL is a format error', () => {
    for (const target of [new Uint8Array(0), new Uint8Array(MAX_SYMLINK_TARGET_BYTES + 1).fill(0x61), Uint8Array.of(0x61, 0, 0x62)]) {
      const plaintext = encodeNode({ kind: 'bucket', entries: [entry(target)] });
      expect(() => decodeNode(plaintext)).toThrow(expect.objectContaining({ name: 'FormatError' }));
    }
  });

  it('a cap kind beyond 0x02 is still a format error (what an older reader does with 0x02)', () => {
    const plaintext = encodeNode({ kind: 'bucket', entries: [entry(Uint8Array.of(0x61))] });
    const kindAt = plaintext.indexOf(0x02, 3);
    plaintext[kindAt] = 0x03;
    expect(() => decodeNode(plaintext)).toThrow(expect.objectContaining({ name: 'FormatError' }));
  });

  it('writers refuse bad targets before anything is stored', () => {
    expect(() => new SymlinkTarget(new Uint8Array(0))).toThrow(RangeError);
    expect(() => new SymlinkTarget(Uint8Array.of(0x61, 0))).toThrow(RangeError);
    expect(() => new SymlinkTarget(new Uint8Array(MAX_SYMLINK_TARGET_BYTES + 1).fill(0x61))).toThrow(RangeError);
  });

  it('a link is the same entry through the write cap and the read cap', async () => {
    const tree = createTree({ chunks: new MemoryChunkStore(), slots: new MemorySlotStore() });
    const cap = await tree.createDirectory();
    await tree.directory(cap).link('f', new LiteralCap(Uint8Array.of(1)), meta);
    await tree.directory(cap).link('l', new SymlinkTarget(Uint8Array.of(0x66)), meta);
    for (const view of [cap, cap.readonly()]) {
      const found = await tree.directory(view).lookup('l');
      expect(found?.cap).toBeInstanceOf(SymlinkTarget);
      expect(Buffer.from((found!.cap as SymlinkTarget).target).toString()).toBe('f');
    }
    await tree.close();
  });
});
