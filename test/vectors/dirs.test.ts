import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type DirectoryReadCap,
  type DirectoryWriteCap,
  FileReadCap,
  LiteralCap,
  SymlinkTarget,
  UnknownCap,
  parseCap,
  parseDirectoryCap,
} from '../../src/cap/index.js';
import { openRandomized } from '../../src/crypto/index.js';
import type { ChunkAddress, ChunkStore } from '../../src/store/chunks/chunk-store.js';
import { parseAddress } from '../../src/store/address.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { storageIndexHex } from '../../src/store/slots/slot-limits.js';
import type { SlotStore } from '../../src/store/slots/slot-store.js';
import type { DirEntry, EntryMetadata, Tree } from '../../src/tree/api.js';
import { DEFAULT_LAYOUT } from '../../src/tree/dir/context.js';
import { DirectoryKeys } from '../../src/tree/dir/keys.js';
import { openNode } from '../../src/tree/dir/node-format.js';
import { verifySlotRecord } from '../../src/tree/dir/slot-record.js';
import { createTree, linkShared, removeDirectory } from '../../src/tree/index.js';
import { createTreeWithInternals } from '../../src/tree/tree.js';

/**
 * Frozen directory vectors (docs/spec/directories.md, slots.md).
 *
 * Directory bytes are randomized (write secrets, nonces), so the scenario
 * below runs with a fixed random source injected for the test only:
 * bytes i of call n are sha256("capstan-v1 dirs vector/" + n) (first n bytes;
 * every call here asks for ≤ 32). With it, every node blob and slot record
 * is deterministic, and dirs.json pins them byte for byte.
 *
 * Two checks: (1) replaying the scenario today writes exactly the frozen
 * bytes (the writer has not changed the format); (2) the frozen bytes, loaded
 * into a fresh store, read back through a default Tree as the expected
 * entries (every later version must still read v1: a fixture store).
 *
 * Regenerate ONLY for a deliberate new format version:
 * CAPSTAN_WRITE_VECTORS=1 npx vitest run test/vectors/dirs.test.ts
 */

const VECTOR_FILE = new URL('./dirs.json', import.meta.url);
const SEED = 'capstan-v1 dirs vector/';

function vectorRandom(): (n: number) => Uint8Array {
  let call = 0;
  return (n) => {
    if (n > 32) throw new Error('vector random source serves at most 32 bytes a call');
    return new Uint8Array(
      createHash('sha256')
        .update(SEED + call++)
        .digest()
        .subarray(0, n),
    );
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const T0 = 1_700_000_000_000;

interface DirectoryVector {
  label: string;
  writeCap: string;
  readCap: string;
  storageIndexHex: string;
  slot: { seq: string; recordHex: string };
  rootAddress: string;
  rootPlaintextHex: string;
  /** Every node reachable from the root: address → blob. */
  nodes: Record<string, string>;
  nameHashes: { name: string; hashHex: string }[];
  /** list() through the write cap, sorted by name. */
  entriesViaWriteCap: { name: string; cap: string; metadata: EntryMetadata }[];
  /** list() through the read cap, sorted by name. */
  entriesViaReadCap: { name: string; cap: string; metadata: EntryMetadata }[];
  /** Removed by rmdir: the slot holds a sealed v2 record, and reading the directory is NotFoundError. */
  sealed?: boolean;
  /** Linked by `capstan ln`: the slot holds a v2 record with the shared flag, and reads as any directory. */
  shared?: boolean;
}

interface DirVectors {
  description: string;
  randomSource: string;
  layout: { bucketMax: number; branchBits: number };
  directories: DirectoryVector[];
}

/** The scenario: a small root with every kind of entry, a child directory, and a directory large enough to branch. */
async function scenario(tree: Tree): Promise<{ label: string; cap: DirectoryWriteCap; sealed?: boolean; shared?: boolean }[]> {
  const root = await tree.createDirectory();
  const dir = tree.directory(root);
  const fileCap = new FileReadCap(new Uint8Array(32).fill(0x11), new Uint8Array(32).fill(0x22), 1_048_577);
  await dir.link('readme.txt', fileCap, { size: 1_048_577, mtimeMs: T0, ctimeMs: T0 + 123.5, atimeMs: T0 + 1000 });
  await dir.link('hello', new LiteralCap(new TextEncoder().encode('hello, world\n')), {
    size: 13,
    mtimeMs: T0,
    ctimeMs: T0,
    noWrite: true,
  });
  await dir.link('empty', new LiteralCap(new Uint8Array(0)), { size: 0, mtimeMs: -1000, ctimeMs: 0 });
  const sub = await dir.mkdir('sub', { mtimeMs: T0 + 2000, ctimeMs: T0 + 2000 });
  // Written NFD and stored NFC by the first writers, which normalized names; spelled NFC here so the
  // replay writes the same frozen bytes now that names are kept as given (the last directory below).
  await dir.link('Caf\u00e9', new UnknownCap('URI:CHK:abc:def:3:10:1234'), { size: 0, mtimeMs: T0, ctimeMs: T0 });
  await dir.link('sub-ro', sub.readonly(), { size: 0, mtimeMs: T0, ctimeMs: T0 });
  await dir.setMetadata('readme.txt', { mtimeMs: T0 + 5 });
  await tree.directory(sub).link('inside', new LiteralCap(Uint8Array.of(1, 2, 3)), { size: 3, mtimeMs: T0, ctimeMs: T0 });

  const big = await tree.createDirectory();
  const n = DEFAULT_LAYOUT.bucketMax + 8;
  for (let i = 0; i < n; i++) {
    await tree
      .directory(big)
      .link(`entry-${String(i).padStart(3, '0')}`, new LiteralCap(Uint8Array.of(i)), { size: 1, mtimeMs: T0 + i, ctimeMs: T0 });
  }
  await tree.directory(big).unlink('entry-000');

  // Names are kept byte for byte: the NFD and NFC spellings of one word are two entries, each with
  // its own name hash, and a name with a real U+FFFD is an ordinary name.
  const names = await tree.createDirectory();
  const meta = { size: 1, mtimeMs: T0, ctimeMs: T0 };
  await tree.directory(names).link('cafe\u0301', new LiteralCap(Uint8Array.of(1)), meta);
  await tree.directory(names).link('caf\u00e9', new LiteralCap(Uint8Array.of(2)), meta);
  await tree.directory(names).link('A\u030a-\uFFFD', new LiteralCap(Uint8Array.of(3)), meta);

  // Removed by rmdir: an entry came and went, then the version was sealed (a v2 slot record). Made in
  // a parent of its own, so the frozen v1 directories above keep their bytes.
  const parent = await tree.createDirectory();
  const removed = await tree.directory(parent).mkdir('removed', { mtimeMs: T0, ctimeMs: T0 });
  await tree.directory(removed).link('was-here', new LiteralCap(Uint8Array.of(4)), meta);
  await tree.directory(removed).unlink('was-here');
  await removeDirectory(tree.directory(parent), 'removed', (entry) => tree.directory(entry.cap as DirectoryWriteCap));

  // Linked under a second name by `capstan ln`: the shared flag (a v2 slot record), kept by the change after it.
  const shared = await tree.directory(parent).mkdir('shared', { mtimeMs: T0, ctimeMs: T0 });
  await linkShared(tree.directory(parent), 'shared-too', shared, meta, (cap) => tree.directory(cap));
  await tree.directory(shared).link('kept', new LiteralCap(Uint8Array.of(5)), meta);

  // Symbolic links (cap kind 0x02): relative, absolute, dangling, escaping, a target that is not
  // UTF-8 and one that spells a /uri cap (only text), beside an ordinary file. Made last so every
  // directory above keeps its frozen bytes.
  const links = await tree.createDirectory();
  const link = (target: Uint8Array | string) => {
    const t = typeof target === 'string' ? new TextEncoder().encode(target) : target;
    return [new SymlinkTarget(t), { size: t.length, mtimeMs: T0, ctimeMs: T0 }] as const;
  };
  await tree.directory(links).link('file', new LiteralCap(Uint8Array.of(6)), meta);
  await tree.directory(links).link('relative', ...link('file'));
  await tree.directory(links).link('absolute', ...link('/d/f'));
  await tree.directory(links).link('escaping', ...link('../../etc/passwd'));
  await tree.directory(links).link('latin1', ...link(Uint8Array.of(0x63, 0x61, 0x66, 0xe9)));
  await tree.directory(links).link('uri', ...link(`/uri/${sub.toString()}/inside`));

  // A file's execute bits (metadata flag bit 2), beside a plain file and one that is also noWrite.
  // Made last so every directory above keeps its frozen bytes.
  const modes = await tree.createDirectory();
  await tree.directory(modes).link('plain', new LiteralCap(Uint8Array.of(7)), meta);
  await tree.directory(modes).link('script', new LiteralCap(Uint8Array.of(8)), { ...meta, executable: true });
  await tree.directory(modes).link('tool', new LiteralCap(Uint8Array.of(9)), { ...meta, executable: true, noWrite: true });
  return [
    { label: 'root: every kind of entry', cap: root },
    { label: 'child directory made by mkdir', cap: sub },
    { label: 'large enough to be a branch', cap: big },
    { label: 'names kept byte for byte: NFD and NFC spellings are two entries', cap: names },
    { label: 'removed by rmdir: a sealed v2 slot record', cap: removed, sealed: true },
    { label: 'linked twice by ln: a shared v2 slot record', cap: shared, shared: true },
    { label: 'symbolic links: cap kind 0x02 holds the target bytes', cap: links },
    { label: 'execute bits: metadata flag bit 2', cap: modes },
  ];
}

async function reachable(chunks: ChunkStore, keys: DirectoryKeys, root: ChunkAddress): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const stack = [root];
  while (stack.length > 0) {
    const address = stack.pop()!;
    const blob = await chunks.get(address);
    out[address.toString()] = hex(blob);
    const { node } = openNode(keys, address, blob);
    if (node.kind === 'branch') for (const c of node.children) if (c.address) stack.push(c.address);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

// A link's `cap` in the vectors is its toString (`symlink:` + the target's hex): it is never a cap string.
const asVector = (e: DirEntry) => ({ name: e.name, cap: e.cap.toString(), metadata: e.metadata });
async function listed(tree: Tree, cap: DirectoryWriteCap | DirectoryReadCap) {
  const out: DirEntry[] = [];
  for await (const e of tree.directory(cap).list()) out.push(e);
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))).map(asVector);
}

async function build(): Promise<DirVectors> {
  const chunks = new MemoryChunkStore();
  const slots = new MemorySlotStore();
  const tree = createTreeWithInternals({ chunks, slots }, { randomBytes: vectorRandom() });
  const made = await scenario(tree);
  const directories: DirectoryVector[] = [];
  for (const { label, cap, sealed, shared } of made) {
    const keys = new DirectoryKeys(cap);
    const entry = (await slots.get(cap.storageIndex))!;
    const version = verifySlotRecord(cap.publicKey, keys.siHex, entry);
    const rootBlob = await chunks.get(version.root);
    const names = sealed ? [] : (await listed(tree, cap)).map((e) => e.name);
    directories.push({
      label,
      writeCap: cap.toString(),
      readCap: cap.readonly().toString(),
      storageIndexHex: keys.siHex,
      slot: { seq: entry.seq.toString(), recordHex: hex(entry.record) },
      rootAddress: version.root.toString(),
      rootPlaintextHex: hex(openRandomized(keys.nodeKey, rootBlob.subarray(1), keys.storageIndex)),
      nodes: await reachable(chunks, keys, version.root),
      nameHashes: names.slice(0, 3).map((name) => ({ name, hashHex: hex(keys.nameHash(Buffer.from(name))) })),
      entriesViaWriteCap: sealed ? [] : await listed(tree, cap),
      entriesViaReadCap: sealed ? [] : await listed(tree, cap.readonly()),
      ...(sealed ? { sealed: true } : {}),
      ...(shared ? { shared: true } : {}),
    });
  }
  return {
    description:
      'Frozen directory vectors, node format v1 and slot formats v1 and v2 (docs/spec/directories.md, slots.md). ' +
      'Produced by the scenario in dirs.test.ts with a fixed random source; do not edit by hand.',
    randomSource: `call n returns the first k bytes of sha256(utf8("${SEED}" + decimal n)), n from 0`,
    layout: { ...DEFAULT_LAYOUT },
    directories,
  };
}

const writing = process.env.CAPSTAN_WRITE_VECTORS === '1';

describe('directory vectors', () => {
  if (writing) {
    it('writes dirs.json', async () => {
      writeFileSync(VECTOR_FILE, JSON.stringify(await build(), null, 2) + '\n');
    });
  }

  describe.skipIf(writing)('frozen', () => {
    const frozen = (): DirVectors => JSON.parse(readFileSync(VECTOR_FILE, 'utf8')) as DirVectors;

    it('the writer, replayed with the fixed random source, writes exactly the frozen bytes', async () => {
      const vectors = frozen();
      expect(DEFAULT_LAYOUT).toEqual(vectors.layout);
      const rebuilt = await build();
      expect(rebuilt.directories.length).toBe(vectors.directories.length);
      for (const [i, v] of vectors.directories.entries()) {
        const r = rebuilt.directories[i]!;
        expect(r.writeCap).toBe(v.writeCap);
        expect(r.slot).toEqual(v.slot);
        expect(r.rootPlaintextHex).toBe(v.rootPlaintextHex);
        expect(r.nodes).toEqual(v.nodes);
        expect(r.nameHashes).toEqual(v.nameHashes);
      }
    });

    it('a store holding only the frozen bytes reads back as the expected directories', async () => {
      const vectors = frozen();
      const chunks = new MemoryChunkStore();
      const slots: SlotStore = new MemorySlotStore();
      for (const v of vectors.directories) {
        for (const [address, blobHex] of Object.entries(v.nodes)) {
          expect((await chunks.put(bytes(blobHex))).toString()).toBe(address);
        }
        const cap = parseDirectoryCap(v.writeCap) as DirectoryWriteCap;
        expect(storageIndexHex(cap.storageIndex)).toBe(v.storageIndexHex);
        await slots.compareAndSwap(cap.storageIndex, null, { seq: BigInt(v.slot.seq), record: bytes(v.slot.recordHex) });
      }
      const tree = createTree({ chunks, slots });
      for (const v of vectors.directories) {
        const write = parseCap(v.writeCap) as DirectoryWriteCap;
        const read = parseCap(v.readCap) as DirectoryReadCap;
        const version = verifySlotRecord(read.publicKey, v.storageIndexHex, { seq: BigInt(v.slot.seq), record: bytes(v.slot.recordHex) });
        expect(version.sealed).toBe(v.sealed === true);
        expect(version.shared).toBe(v.shared === true);
        if (v.sealed === true) {
          await expect(listed(tree, write)).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
          await expect(tree.directory(read).count()).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
          continue;
        }
        expect(await listed(tree, write)).toEqual(v.entriesViaWriteCap);
        expect(await listed(tree, read)).toEqual(v.entriesViaReadCap);
        expect(await tree.directory(read).count()).toBe(v.entriesViaReadCap.length);
        const keys = new DirectoryKeys(read);
        for (const { name, hashHex } of v.nameHashes) expect(hex(keys.nameHash(Buffer.from(name)))).toBe(hashHex);
        expect(version.root.toString()).toBe(v.rootAddress);
        const rootBlob = bytes(v.nodes[v.rootAddress]!);
        expect(hex(openRandomized(keys.nodeKey, rootBlob.subarray(1), keys.storageIndex))).toBe(v.rootPlaintextHex);
        expect(openNode(keys, parseAddress(v.rootAddress), rootBlob).node.kind).toBe(
          v.entriesViaReadCap.length > vectors.layout.bucketMax ? 'branch' : 'bucket',
        );
      }
      // What the vectors show about caps: a write view unseals child write caps, a read view never does.
      const root = vectors.directories[0]!;
      const sub = vectors.directories[1]!;
      expect(root.entriesViaWriteCap.find((e) => e.name === 'sub')?.cap).toBe(sub.writeCap);
      expect(root.entriesViaReadCap.find((e) => e.name === 'sub')?.cap).toBe(sub.readCap);
      expect(root.entriesViaReadCap.find((e) => e.name === 'sub-ro')?.cap).toBe(sub.readCap);
      expect(root.entriesViaReadCap.map((e) => e.name)).toContain('Caf\u00e9');
      expect(JSON.stringify(root.rootPlaintextHex)).not.toContain(hex((parseCap(sub.writeCap) as DirectoryWriteCap).writeSecret));
      // Links read back as the target's bytes, the same through either cap, and are never a parsed cap.
      const links = vectors.directories.find((d) => d.label.startsWith('symbolic links'))!;
      const viaRead = await tree.directory(parseCap(links.readCap) as DirectoryReadCap).lookup('latin1');
      expect(viaRead?.cap).toBeInstanceOf(SymlinkTarget);
      expect(hex((viaRead!.cap as SymlinkTarget).target)).toBe('636166e9');
      expect(links.entriesViaReadCap).toEqual(links.entriesViaWriteCap);
      expect(links.entriesViaReadCap.find((e) => e.name === 'uri')?.cap.startsWith('symlink:')).toBe(true);
      await tree.close();
    });
  });
});
