import { setTimeout as sleep } from 'node:timers/promises';
import { TransientError } from '../errors.js';
import { convergenceSecret } from '../crypto/convergence.js';
import type { NodeConfig } from '../config/index.js';
import { FsChunkStore, openSharedSlotStore, type ChunkStore, type SlotStore } from '../store/index.js';
import { createTree } from '../tree/index.js';
import type { Tree } from '../tree/api.js';
import { CONVERGENCE_SECRET_FILE, SLOT_SOCKET_FILE, nodePath } from './layout.js';
import { readConvergenceSecret } from './secrets.js';

/** A node's stores and tree, opened by a CLI command. */
export interface OpenNode {
  config: NodeConfig;
  chunks: ChunkStore;
  slots: SlotStore;
  /** true when the slots are reached through a running gateway's socket. */
  shared: boolean;
  tree: Tree;
  /**
   * The convergence secret for uploads made on behalf of `account`, or, with
   * no account, the gateway-wide one (the CLI's default: an operator's own
   * uploads then deduplicate with nobody's in per-account mode).
   */
  convergence(account?: string): Uint8Array;
  close(): Promise<void>;
}

/** How long a command waits for the slot database while another short-lived command holds it. */
const LOCK_WAIT_MS = 5_000;

/**
 * Opens the node's chunk store and slot store for a command. The chunk store
 * is a directory of immutable files, safe to open alongside a running
 * gateway; the slot database is opened directly when no gateway holds it,
 * else reached through the gateway's socket (openSharedSlotStore). Another
 * command holding it briefly is waited for, up to LOCK_WAIT_MS.
 */
export async function openNode(config: NodeConfig): Promise<OpenNode> {
  const secret = await readConvergenceSecret(nodePath(config.nodeDir, CONVERGENCE_SECRET_FILE));
  const chunks = await FsChunkStore.open(config.storage.fsDir, { fsync: config.storage.fsFsync });
  let opened: { store: SlotStore; shared: boolean } | undefined;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let delay = 50; opened === undefined; delay = Math.min(delay * 2, 500)) {
    try {
      opened = await openSharedSlotStore(config.storage.slotsDir, nodePath(config.nodeDir, SLOT_SOCKET_FILE));
    } catch (err) {
      if (!(err instanceof TransientError) || Date.now() + delay > deadline) {
        await chunks.close();
        throw err;
      }
      await sleep(delay);
    }
  }
  const { store: slots, shared } = opened;
  const tree = createTree({ chunks, slots, chunkSize: config.storage.chunkSize });
  let closing: Promise<void> | undefined;
  return {
    config,
    chunks,
    slots,
    shared,
    tree,
    convergence: (account) => convergenceSecret(secret, config.node.convergence, account),
    close: () =>
      (closing ??= (async () => {
        await tree.close();
        await slots.close();
        await chunks.close();
      })()),
  };
}
