import type { KeyedMutex } from '../../util/keyed-mutex.js';
import type { DirectoryWriteCap } from '../../cap/index.js';
import { IntegrityError, type AbortOptions } from '../../errors.js';
import { addressKey } from '../../store/address.js';
import type { ChunkAddress, ChunkStore } from '../../store/chunks/chunk-store.js';
import type { SlotStore } from '../../store/slots/slot-store.js';
import type { DirectoryKeys } from './keys.js';
import type { NodeCache } from './node-cache.js';
import type { VerifiedSlots } from './verified-slots.js';
import type { SlotWatermarks } from './watermarks.js';
import { nodeCount, openNode, type DirNode } from './node-format.js';

/**
 * How a writer shapes the HAMT. Readers follow whatever shape they find (a
 * branch states its own fan-out), so these are writer policy, not format;
 * but every v1 writer MUST use DEFAULT_LAYOUT so that one set of names has one
 * shape whoever wrote it (see docs/spec/directories.md for the measurements
 * behind the numbers).
 */
export interface DirectoryLayout {
  /** A subtree of at most this many entries is one bucket; more, a branch. */
  bucketMax: number;
  /** A branch has 2^branchBits children. */
  branchBits: number;
}

export const DEFAULT_LAYOUT: DirectoryLayout = { bucketMax: 32, branchBits: 3 };

/** A store answered an older version of a directory than one already seen, or none at all. */
export interface SlotRollback {
  storageIndex: string;
  seen: bigint;
  /** undefined: the slot was missing. */
  got: bigint | undefined;
}

/** One directory update that wrote a version: how many compare-and-swaps it took (1: no conflict), and whether it gave up. */
export interface DirectoryUpdate {
  storageIndex: string;
  attempts: number;
  committed: boolean;
}

/** Everything the directories of one Tree share. */
export interface DirectoryContext {
  readonly chunks: ChunkStore;
  readonly slots: SlotStore;
  readonly cache: NodeCache;
  /** The last verified slot record per directory (an unchanged slot is not verified twice). */
  readonly verifiedSlots: VerifiedSlots;
  /** The highest seq seen per directory: an older one is a rollback (docs/spec/slots.md). */
  readonly watermarks: SlotWatermarks;
  /** Told of each rollback refused (the gateway logs it at error). */
  readonly onRollback: ((rollback: SlotRollback) => void) | undefined;
  /** Told of each update that wrote (or gave up writing) a version: contention, for metrics and logs. */
  readonly onUpdate: ((update: DirectoryUpdate) => void) | undefined;
  readonly layout: DirectoryLayout;
  /** Source of write secrets and nonces (crypto randomness; tests inject a fixed one for vectors). */
  readonly randomBytes: (n: number) => Uint8Array;
  /** Compare-and-swap attempts per mutation before TransientError. */
  readonly maxAttempts: number;
  /** Serializes mutations of one directory within this Tree (they would only conflict). */
  readonly locks: KeyedMutex;
  createDirectory(options?: AbortOptions): Promise<DirectoryWriteCap>;
}

/** Node puts or gets one operation keeps in flight (a split writes up to 2^bits buckets). */
export const NODE_IO_CONCURRENCY = 8;

/**
 * Fetches, opens and caches a node. `expectedCount` is what the parent
 * pointer says the subtree holds; a node disagreeing with its parent is as
 * corrupt as one that fails its tag.
 */
export async function loadNode(
  ctx: DirectoryContext,
  keys: DirectoryKeys,
  address: ChunkAddress,
  expectedCount: number | undefined,
  options: AbortOptions = {},
): Promise<DirNode> {
  const cached = cachedNode(ctx, keys, address, expectedCount);
  if (cached !== undefined) return cached;
  const blob = await ctx.chunks.get(address, options);
  const opened = openNode(keys, address, blob);
  ctx.cache.set(keys.siHex, addressKey(address), opened.node, opened.size);
  return counted(opened.node, address, expectedCount);
}

/**
 * loadNode's answer when the node is in the cache, undefined when it is
 * not: without a promise, so that a walk through cached nodes (every lookup
 * of a busy directory) takes no turn of the microtask queue per level.
 */
export function cachedNode(
  ctx: DirectoryContext,
  keys: DirectoryKeys,
  address: ChunkAddress,
  expectedCount: number | undefined,
): DirNode | undefined {
  const node = ctx.cache.get(keys.siHex, addressKey(address));
  return node === undefined ? undefined : counted(node, address, expectedCount);
}

function counted(node: DirNode, address: ChunkAddress, expectedCount: number | undefined): DirNode {
  if (expectedCount !== undefined && nodeCount(node) !== expectedCount) {
    throw new IntegrityError(addressKey(address), 'directory node');
  }
  return node;
}

/** Maps with at most `limit` calls in flight, keeping order. */
export async function mapLimit<T, U>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<U>): Promise<U[]> {
  const out = new Array<U>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
