import { throwIfAborted, type AbortOptions } from '../../errors.js';
import { addressKey } from '../../store/address.js';
import type { ChunkAddress } from '../../store/chunks/chunk-store.js';
import { NODE_IO_CONCURRENCY, loadNode, type DirectoryContext } from './context.js';
import type { DirectoryKeys } from './keys.js';
import type { DirNode, StoredEntry } from './node-format.js';

/**
 * Every bucket of one directory version, depth first; with `everyNode`,
 * every node of it, branches (with no entries) and empty buckets included
 * (gc must mark each node blob). Yields whole buckets, not entries: each
 * level of `yield*` delegation costs a promise hop per item, which for
 * 10,000 entries four levels deep was most of a listing.
 *
 * Memory: the branch nodes on the current path plus, per branch, at most
 * NODE_IO_CONCURRENCY children fetched ahead (fetching one node at a time
 * would make a 10,000-entry listing wait for hundreds of sequential reads).
 * A consumer that stops early leaves at most those fetches to finish.
 */
export async function* walkVersion(
  ctx: DirectoryContext,
  keys: DirectoryKeys,
  root: ChunkAddress,
  { everyNode, ...options }: AbortOptions & { everyNode: boolean },
): AsyncGenerator<{ entries: readonly StoredEntry[]; nodeId: string }> {
  const node = await loadNode(ctx, keys, root, undefined, options);
  yield* walkNode(ctx, keys, node, addressKey(root), options, everyNode);
}

async function* walkNode(
  ctx: DirectoryContext,
  keys: DirectoryKeys,
  node: DirNode,
  nodeId: string,
  options: AbortOptions,
  everyNode: boolean,
): AsyncGenerator<{ entries: readonly StoredEntry[]; nodeId: string }> {
  throwIfAborted(options.signal);
  if (node.kind === 'bucket') {
    if (everyNode || node.entries.length > 0) yield { entries: node.entries, nodeId };
    return;
  }
  if (everyNode) yield { entries: [], nodeId };
  const children = node.children.flatMap((c) => (c.address === undefined ? [] : [{ address: c.address, count: c.count }]));
  const pending: (Promise<DirNode> | undefined)[] = new Array(children.length);
  const load = (child: (typeof children)[number]): Promise<DirNode> => {
    const p = loadNode(ctx, keys, child.address, child.count, options);
    // Awaited below in order; this only keeps a failure that arrives while
    // an earlier child is being consumed from counting as unhandled.
    p.catch(() => undefined);
    return p;
  };
  const start = (i: number): void => {
    const child = children[i];
    if (child !== undefined && !pending[i]) pending[i] = load(child);
  };
  for (const [i, ref] of children.entries()) {
    for (let j = i; j < i + NODE_IO_CONCURRENCY; j++) start(j);
    const child = await (pending[i] ?? load(ref));
    pending[i] = undefined;
    yield* walkNode(ctx, keys, child, addressKey(ref.address), options, everyNode);
  }
}
