import { commandRecorder, type EventRecorder } from '../events/index.js';
import { convergenceSecret } from '../crypto/convergence.js';
import type { NodeConfig } from '../config/index.js';
import type { ChunkStore, SlotStore } from '../store/index.js';
import { createTree } from '../tree/index.js';
import type { Tree } from '../tree/api.js';
import { CONVERGENCE_SECRET_FILE, nodePath, SLOT_WATERMARKS_FILE } from './layout.js';
import { FileSlotWatermarks } from './slot-watermarks.js';
import { readConvergenceSecret } from './secrets.js';
import { openCommandStores } from './stores.js';

/** A node's stores and tree, opened by a CLI command. */
export interface OpenNode {
  config: NodeConfig;
  chunks: ChunkStore;
  slots: SlotStore;
  /** true when the stores are a running gateway's, reached through its socket. */
  shared: boolean;
  tree: Tree;
  /**
   * The convergence secret for uploads made on behalf of `account`, or, with
   * no account, the gateway-wide one (the CLI's default: an operator's own
   * uploads then deduplicate with nobody's in per-account mode).
   */
  convergence(account?: string): Uint8Array;
  /** Where the command's changes are recorded when [events] has a sink (the drop box the gateway takes in). */
  events?: EventRecorder | undefined;
  close(): Promise<void>;
}

/**
 * Opens the node's stores for a command (src/node/stores.ts: its own, or a
 * running gateway's through the node socket) and a tree over them.
 */
export async function openNode(config: NodeConfig): Promise<OpenNode> {
  const secret = await readConvergenceSecret(nodePath(config.nodeDir, CONVERGENCE_SECRET_FILE));
  const stores = await openCommandStores(config);
  const { chunks, slots, shared } = stores;
  const watermarks = await FileSlotWatermarks.open(nodePath(config.nodeDir, SLOT_WATERMARKS_FILE)).catch(async (err: unknown) => {
    await stores.close();
    throw err;
  });
  const tree = createTree({ chunks, slots, chunkSize: config.storage.chunkSize, checksums: config.storage.checksums, watermarks });
  let closing: Promise<void> | undefined;
  return {
    config,
    chunks,
    slots,
    shared,
    tree,
    convergence: (account) => convergenceSecret(secret, config.node.convergence, account),
    events: commandRecorder(config.events, { gateway: config.node.nickname, tree }),
    close: () =>
      (closing ??= (async () => {
        await tree.close();
        await watermarks.close();
        await stores.close();
      })()),
  };
}

export {
  openChunkStore,
  openDefenderStore,
  openUsageLedger,
  openPostgresObjectIndex,
  openPostgresSlots,
  openS3ChunkStore,
  withReadCache,
} from './backends.js';
