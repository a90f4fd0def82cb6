import { throwIfAborted, type AbortOptions } from '../../errors.js';
import { addressKey } from '../../store/address.js';
import type { ChunkAddress } from '../../store/chunks/chunk-store.js';
import { NODE_IO_CONCURRENCY, cachedNode, loadNode, mapLimit, type DirectoryContext } from './context.js';
import { NAME_HASH_BITS, hashBits, type DirectoryKeys } from './keys.js';
import {
  compareNames,
  encodeNode,
  nodeCount,
  sealNode,
  type BucketNode,
  type ChildRef,
  type DirNode,
  type StoredEntry,
} from './node-format.js';
import { XCHACHA_NONCE_BYTES } from '../../crypto/index.js';

/**
 * A pending directory version: the HAMT edited in memory, copy-on-write.
 *
 * Nodes loaded from the store (and the cache) are never mutated; an edit
 * builds new nodes along the root-to-bucket path and shares every other
 * subtree by address, so one change rewrites O(depth) nodes whatever the
 * directory's size. commit() writes new nodes children first, so by the time
 * the slot points at a root, everything under it is stored.
 *
 * Canonical shape (which makes the shape a function of the set of names, not
 * of the order of edits): a subtree of ≤ bucketMax entries is one bucket, a
 * larger one a branch; an empty non-root subtree is an empty pointer; the
 * root is always a node (an empty directory is an empty bucket).
 */
interface Ref extends ChildRef {
  /** Set when the node is new in this draft (then `address` is absent until commit). */
  readonly draft?: DirNode;
}

const EMPTY: Ref = { count: 0 };

export class Draft {
  private root: Ref;
  changed = false;
  /**
   * Address keys of the stored nodes this draft's edits replaced: the path
   * from the root to each changed bucket, and the children a collapse
   * gathered. Once the new version is the slot's, the current version no
   * longer reaches them (an older one, a snapshot's, still may).
   */
  readonly superseded: string[] = [];

  constructor(
    private readonly ctx: DirectoryContext,
    private readonly keys: DirectoryKeys,
    rootAddress: ChunkAddress,
    private readonly options: AbortOptions = {},
  ) {
    // The root's count is not known until it is read; `undefined` skips the check.
    this.root = { address: rootAddress, count: -1 };
  }

  /** The node `ref` points at: at once when it is new here or cached (cachedNode), else from the store. */
  private load(ref: Ref): DirNode | Promise<DirNode> {
    if (ref.draft) return ref.draft;
    if (!ref.address) return { kind: 'bucket', entries: [] };
    const expected = ref.count < 0 ? undefined : ref.count;
    return cachedNode(this.ctx, this.keys, ref.address, expected) ?? loadNode(this.ctx, this.keys, ref.address, expected, this.options);
  }

  async count(): Promise<number> {
    return nodeCount(await this.load(this.root));
  }

  async get(name: Uint8Array): Promise<StoredEntry | undefined> {
    const hash = this.keys.nameHash(name);
    let ref = this.root;
    let offset = 0;
    for (;;) {
      const loaded = this.load(ref);
      const node = loaded instanceof Promise ? await loaded : loaded;
      if (node.kind === 'bucket') return findEntry(node, name);
      ref = node.children[hashBits(hash, offset, node.bits)]!;
      offset += node.bits;
    }
  }

  /** Inserts `entry`, replacing any entry of the same name. */
  async set(entry: StoredEntry): Promise<void> {
    this.root = await this.setIn(this.root, 0, this.keys.nameHash(entry.nameUtf8), entry);
    this.changed = true;
  }

  /** Removes and returns the entry called `name`, or undefined (and no change) if there is none. */
  async delete(name: Uint8Array): Promise<StoredEntry | undefined> {
    const result = await this.deleteIn(this.root, 0, this.keys.nameHash(name), name);
    if (!result) return undefined;
    this.root = result.ref.address || result.ref.draft ? result.ref : draftRef({ kind: 'bucket', entries: [] });
    this.changed = true;
    return result.removed;
  }

  private async setIn(ref: Ref, offset: number, hash: Uint8Array, entry: StoredEntry): Promise<Ref> {
    throwIfAborted(this.options.signal);
    const node = await this.load(ref);
    this.replacing(ref);
    if (node.kind === 'bucket') {
      const entries = node.entries.slice();
      const { index, found } = search(entries, entry.nameUtf8);
      entries.splice(index, found ? 1 : 0, entry);
      return this.shapeBucket(entries, offset);
    }
    const i = hashBits(hash, offset, node.bits);
    const children = node.children.slice();
    children[i] = await this.setIn(children[i]!, offset + node.bits, hash, entry);
    return draftRef({ kind: 'branch', bits: node.bits, children });
  }

  private async deleteIn(
    ref: Ref,
    offset: number,
    hash: Uint8Array,
    name: Uint8Array,
  ): Promise<{ ref: Ref; removed: StoredEntry } | undefined> {
    throwIfAborted(this.options.signal);
    const node = await this.load(ref);
    if (node.kind === 'bucket') {
      const { index, found } = search(node.entries, name);
      if (!found) return undefined;
      this.replacing(ref);
      const entries = node.entries.slice();
      const [removed] = entries.splice(index, 1);
      return { ref: entries.length === 0 ? EMPTY : draftRef({ kind: 'bucket', entries }), removed: removed! };
    }
    const i = hashBits(hash, offset, node.bits);
    const result = await this.deleteIn(node.children[i]!, offset + node.bits, hash, name);
    if (!result) return undefined;
    this.replacing(ref);
    const children = node.children.slice();
    children[i] = result.ref;
    const branch: DirNode = { kind: 'branch', bits: node.bits, children };
    const total = nodeCount(branch);
    if (total === 0) return { ref: EMPTY, removed: result.removed };
    if (total <= this.ctx.layout.bucketMax) {
      // Collapse: the whole subtree fits one bucket again.
      const entries = await this.gather(branch);
      entries.sort((a, b) => compareNames(a.nameUtf8, b.nameUtf8));
      return { ref: draftRef({ kind: 'bucket', entries }), removed: result.removed };
    }
    return { ref: draftRef(branch), removed: result.removed };
  }

  /** Every entry under `node` (only called on subtrees of ≤ bucketMax entries). */
  private async gather(node: DirNode): Promise<StoredEntry[]> {
    if (node.kind === 'bucket') return node.entries.slice();
    const parts = await mapLimit(node.children, NODE_IO_CONCURRENCY, async (child) => {
      if (child.count === 0) return [];
      const gathered = await this.gather(await this.load(child));
      this.replacing(child);
      return gathered;
    });
    return parts.flat();
  }

  /** Notes that a stored node (not one new in this draft) is being replaced. */
  private replacing(ref: Ref): void {
    if (ref.draft === undefined && ref.address !== undefined) this.superseded.push(addressKey(ref.address));
  }

  /** A bucket of `entries` at `offset`, split into a branch (recursively) while it is over bucketMax. */
  private shapeBucket(entries: StoredEntry[], offset: number): Ref {
    const { bucketMax, branchBits } = this.ctx.layout;
    if (entries.length === 0) return EMPTY;
    // Past the last hash bit nothing can split further; 2^-256 territory.
    if (entries.length <= bucketMax || offset + branchBits > NAME_HASH_BITS) return draftRef({ kind: 'bucket', entries });
    const groups: StoredEntry[][] = Array.from({ length: 1 << branchBits }, () => []);
    for (const entry of entries) {
      groups[hashBits(this.keys.nameHash(entry.nameUtf8), offset, branchBits)]!.push(entry);
    }
    // Entries stay in name order within each group, since `entries` was sorted.
    const children = groups.map((group) => this.shapeBucket(group, offset + branchBits));
    return draftRef({ kind: 'branch', bits: branchBits, children });
  }

  /** Writes every new node, children before parents, and returns the new root's address. */
  async commit(): Promise<ChunkAddress> {
    const root = await this.write(this.root);
    return root.address!;
  }

  private async write(ref: Ref): Promise<Ref> {
    if (!ref.draft) return ref;
    let node = ref.draft;
    if (node.kind === 'branch') {
      // Only children new in this draft are written (after one upload, one per level): the others keep their address.
      const children: Ref[] = [...node.children];
      const fresh = children.flatMap((child, i) => (child.draft === undefined ? [] : [{ child, i }]));
      await mapLimit(fresh, NODE_IO_CONCURRENCY, async ({ child, i }) => {
        children[i] = await this.write(child);
      });
      node = { kind: 'branch', bits: node.bits, children: children.map((c) => ({ address: c.address, count: c.count })) };
    }
    throwIfAborted(this.options.signal);
    const plaintext = encodeNode(node);
    const blob = sealNode(this.keys, plaintext, this.ctx.randomBytes(XCHACHA_NONCE_BYTES));
    // Sealed under a fresh random nonce: no copy can be stored already.
    const address = await this.ctx.chunks.put(blob, { ...this.options, unique: true });
    // The next operation on this directory will very likely read it back.
    this.ctx.cache.set(this.keys.siHex, addressKey(address), node, plaintext.length);
    return { address, count: ref.count };
  }
}

function draftRef(node: DirNode): Ref {
  return { draft: node, count: nodeCount(node) };
}

/** Binary search by UTF-8 name bytes. */
function search(entries: readonly StoredEntry[], name: Uint8Array): { index: number; found: boolean } {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareNames(entries[mid]!.nameUtf8, name);
    if (c === 0) return { index: mid, found: true };
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return { index: lo, found: false };
}

function findEntry(node: BucketNode, name: Uint8Array): StoredEntry | undefined {
  const { index, found } = search(node.entries, name);
  return found ? node.entries[index] : undefined;
}
