import path from 'node:path';
import type { NodeConfig } from '../config/index.js';
import { InvalidInputError, TransientError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChunkStore } from '../store/chunks/chunk-store.js';
import { FsChunkStore } from '../store/chunks/fs/fs-chunk-store.js';
import { LocalEngine } from '../store/packs/local-engine.js';
import { SocketChunkStore, SocketClient, SocketSlotStore } from '../store/socket/client.js';
import type { NodeStores } from '../store/socket/server.js';
import { isLevelLocked, LevelSlotStore } from '../store/slots/level.js';
import type { SlotStore } from '../store/slots/slot-store.js';
import { LOCK_WAIT_MS, whileBusy } from '../util/lock-wait.js';
import { SLOT_SOCKET_FILE, nodePath } from './layout.js';
import { openChunkStore, openPostgresObjectIndex, openPostgresSlots, openS3ChunkStore, withReadCache } from './backends.js';
import { FlushingSlotStore } from '../store/packs/flushing-slot-store.js';
import type { ObjectIndex } from '../store/packs/index-store.js';
import { LevelObjectIndex } from '../store/packs/level-index.js';
import { PackChunkStore } from '../store/packs/pack-store.js';
import { FsPackObjects } from '../store/packs/fs-pack-objects.js';
import { ObjectPackSink } from '../store/packs/object-sink.js';
import { S3PackObjects } from '../store/packs/s3-pack-objects.js';

/**
 * Where a node's stores come from, for the gateway and for CLI commands:
 * the one place that knows which combination of backends a configuration
 * means (docs/configuration.md, [storage]).
 *
 * - fs chunks, LevelDB slots (the embedded default): a LocalEngine (storage
 *   engine v3, docs/spec/packs.md) owns the node's LevelDB and journal; the
 *   loose chunks of earlier versions are read through it. The process that
 *   opens it serves it on the node socket; another process (a CLI command
 *   while the gateway runs) reaches both stores through that socket.
 * - S3 chunks (storage engine v3 on S3, docs/spec/packs.md): objects go into
 *   packs uploaded to the bucket, one PUT per commit; the object index is in
 *   PostgreSQL beside the slots (several gateways), or in a LevelDB of the
 *   node (`store/objects`) with LevelDB slots, which the gateway then serves
 *   on the socket with its pack store. Objects stored before v3 (one S3
 *   object each) are read through. Every slot swap flushes the packs first.
 * - fs chunks with PostgreSQL slots (a shared fs): storage engine v3 as on
 *   S3, with packs written whole as files into `shared-packs/` and the
 *   object index in PostgreSQL; every process is a client of the database
 *   and of the shared directory itself.
 */
export interface OpenedStores {
  chunks: ChunkStore;
  slots: SlotStore;
  /** What this process serves on the node socket, when it owns the node's LevelDB. */
  serve?: NodeStores | undefined;
  /** True when the stores are a running gateway's, reached through its socket. */
  shared: boolean;
  /** Why the stores refuse every commit from now on, if they do (the embedded engine after a failed index write); for /healthz. */
  commitFault?: (() => Error | undefined) | undefined;
  close(): Promise<void>;
}

function embedded(config: NodeConfig): boolean {
  return config.storage.backend !== 's3' && config.storage.slots.backend !== 'postgres';
}

/** Opens the embedded default's engine, waiting briefly for a command that holds the LevelDB. */
async function openEngine(config: NodeConfig, logger: Logger | undefined, waitMs: number): Promise<LocalEngine> {
  const { storage } = config;
  return whileBusy(
    async () => {
      const legacy = await looseChunks(storage.fsDir, storage.fsFsync);
      try {
        return await LocalEngine.open({
          slotsDir: storage.slotsDir,
          packsDir: path.join(storage.fsDir, 'packs'),
          legacy,
          fsync: storage.fsFsync,
          logger,
        });
      } catch (err) {
        await legacy?.close();
        throw err;
      }
    },
    isLevelLocked,
    waitMs,
  );
}

/**
 * The loose chunk files of layouts v1/v2 under the fs store's root, when
 * there are any. Nothing writes loose files on the embedded default any
 * more, so a node without them never needs to look there: not on every
 * put's deduplication check (a failed stat per new object) nor on a miss.
 */
async function looseChunks(dir: string, fsync: boolean): Promise<FsChunkStore | undefined> {
  const store = await FsChunkStore.open(dir, { fsync });
  for await (const _ of store.list()) return store;
  await store.close();
  return undefined;
}

/** `store/objects`: the object index of packs on S3 when the slots are in LevelDB (beside `store/slots`). */
function objectsDir(config: NodeConfig): string {
  return path.join(path.dirname(config.storage.slotsDir), 'objects');
}

/**
 * Packs on S3 over `index`, reading objects stored before v3 through the
 * plain S3 store; its close() closes the index and the bucket's client.
 */
async function openS3Packs(config: NodeConfig, index: ObjectIndex, logger: Logger | undefined): Promise<PackChunkStore> {
  let s3: Awaited<ReturnType<typeof openS3ChunkStore>>;
  try {
    s3 = await openS3ChunkStore(config, logger);
  } catch (err) {
    await index.close();
    throw err;
  }
  const sink = new ObjectPackSink({ objects: new S3PackObjects(s3.client, s3.prefix) });
  return new PackChunkStore({ sink, index, legacy: s3, dedupAgainstLegacy: false });
}

/** `<fs.dir>/shared-packs`: the packs of gateways sharing an fs chunk directory and PostgreSQL slots. */
export function sharedPacksDir(config: NodeConfig): string {
  return path.join(config.storage.fsDir, 'shared-packs');
}

/**
 * The stores of a node on a shared fs with PostgreSQL slots (storage engine
 * v3, docs/spec/packs.md): packs written whole into `shared-packs/`, the
 * object index in PostgreSQL beside the slots, every slot swap after the
 * flush. Loose chunk files written before (layout v2) are read through.
 */
async function openSharedFsStores(config: NodeConfig, logger: Logger | undefined): Promise<OpenedStores> {
  const { storage } = config;
  if (storage.slots.backend !== 'postgres') throw new InvalidInputError('a shared fs store needs postgres slots');
  const index = await openPostgresObjectIndex(storage.slots, logger);
  let packs: PackChunkStore;
  try {
    const objects = await FsPackObjects.open(sharedPacksDir(config), { fsync: storage.fsFsync });
    const legacy = await FsChunkStore.open(storage.fsDir, { fsync: storage.fsFsync });
    packs = new PackChunkStore({ sink: new ObjectPackSink({ objects }), index, legacy, dedupAgainstLegacy: false });
  } catch (err) {
    await index.close();
    throw err;
  }
  // No read cache: the packs are on a local (or mounted) file system already.
  const chunks: ChunkStore = packs;
  try {
    const slots = new FlushingSlotStore(await openPostgresSlots(storage.slots, logger), packs);
    return { chunks, slots, shared: false, close: async () => void (await Promise.all([slots.close(), chunks.close()])) };
  } catch (err) {
    await chunks.close();
    throw err;
  }
}

/** The stores of a node on S3 (see OpenedStores); `gateway`: serve the LevelDB ones on the socket, or reach a gateway's. */
async function openS3Stores(config: NodeConfig, logger: Logger | undefined, gateway: boolean): Promise<OpenedStores> {
  const { slots: slotsConfig } = config.storage;
  if (slotsConfig.backend === 'postgres') {
    const packs = await openS3Packs(config, await openPostgresObjectIndex(slotsConfig, logger), logger);
    const chunks = await withReadCache(config, packs, gateway);
    try {
      const slots = new FlushingSlotStore(await openPostgresSlots(slotsConfig, logger), packs);
      return { chunks, slots, shared: false, close: async () => void (await Promise.all([slots.close(), chunks.close()])) };
    } catch (err) {
      await chunks.close();
      throw err;
    }
  }
  const socketPath = nodePath(config.nodeDir, SLOT_SOCKET_FILE);
  const opened = whileBusy(
    async (): Promise<OpenedStores> => {
      let level: LevelSlotStore;
      try {
        level = await LevelSlotStore.open(config.storage.slotsDir);
      } catch (err) {
        if (!isLevelLocked(err) || gateway) throw err;
        // A gateway holds them: its pack store and its slots, through the socket.
        const client = await connectOrBusy(socketPath);
        return { chunks: new SocketChunkStore(client), slots: new SocketSlotStore(client), shared: true, close: () => client.close() };
      }
      try {
        const packs = await openS3Packs(config, await LevelObjectIndex.openOwned(objectsDir(config)), logger);
        const chunks = await withReadCache(config, packs, gateway);
        const slots = new FlushingSlotStore(level, packs);
        const close = async (): Promise<void> => void (await Promise.all([slots.close(), chunks.close()]));
        return { chunks, slots, ...(gateway ? { serve: { chunks: packs, slots } } : {}), shared: false, close };
      } catch (err) {
        await level.close();
        throw err;
      }
    },
    (err) => err instanceof TransientError || isLevelLocked(err),
  );
  return gateway
    ? opened.catch((err: unknown) => {
        throw heldElsewhere(err, config.storage.slotsDir);
      })
    : opened;
}

/** The stores of `capstan run`: it owns them, and serves the LevelDB ones on the node socket. */
export async function openGatewayStores(config: NodeConfig, logger: Logger): Promise<OpenedStores> {
  if (config.storage.backend === 's3') return openS3Stores(config, logger, true);
  if (embedded(config)) {
    const engine = await openEngine(config, logger, LOCK_WAIT_MS).catch((err: unknown) => {
      throw heldElsewhere(err, config.storage.slotsDir);
    });
    return {
      chunks: engine.chunks,
      slots: engine.slots,
      serve: { chunks: engine.chunks, slots: engine.slots },
      shared: false,
      commitFault: () => engine.commitFault,
      close: () => engine.close(),
    };
  }
  if (config.storage.slots.backend === 'postgres') return openSharedFsStores(config, logger);
  const chunks = await openChunkStore(config, { logger });
  try {
    const slots = await whileBusy(() => LevelSlotStore.open(config.storage.slotsDir), isLevelLocked, LOCK_WAIT_MS).catch((err: unknown) => {
      throw heldElsewhere(err, config.storage.slotsDir);
    });
    return { chunks, slots, serve: { slots }, shared: false, close: async () => void (await Promise.all([slots.close(), chunks.close()])) };
  } catch (err) {
    await chunks.close();
    throw err;
  }
}

/**
 * The stores for a CLI command: the node's own when no gateway holds them,
 * else the gateway's through its socket. Another command holding the
 * LevelDB for a moment is waited for, up to LOCK_WAIT_MS.
 */
export async function openCommandStores(config: NodeConfig): Promise<OpenedStores> {
  if (config.storage.backend === 's3') return openS3Stores(config, undefined, false);
  const socketPath = nodePath(config.nodeDir, SLOT_SOCKET_FILE);
  if (embedded(config)) {
    return whileBusy(
      async () => {
        try {
          const engine = await openEngine(config, undefined, 0);
          return { chunks: engine.chunks, slots: engine.slots, shared: false, close: () => engine.close() };
        } catch (err) {
          if (!isLevelLocked(err)) throw err;
          const client = await connectOrBusy(socketPath);
          return {
            chunks: new SocketChunkStore(client),
            slots: new SocketSlotStore(client),
            shared: true,
            close: () => client.close(),
          };
        }
      },
      (err) => err instanceof TransientError,
    );
  }
  // No read cache for a command: it is short-lived, and sharing the cache
  // directory with a running gateway would let each evict the other's files.
  if (config.storage.slots.backend === 'postgres') return openSharedFsStores(config, undefined);
  const chunks = await openChunkStore(config, { cache: false });
  try {
    const { slots, shared } = await whileBusy(
      async () => {
        try {
          return { slots: (await LevelSlotStore.open(config.storage.slotsDir)) as SlotStore, shared: false };
        } catch (err) {
          if (!isLevelLocked(err)) throw err;
          return { slots: new SocketSlotStore(await connectOrBusy(socketPath)) as SlotStore, shared: true };
        }
      },
      (err) => err instanceof TransientError,
    );
    return { chunks, slots, shared, close: async () => void (await Promise.all([slots.close(), chunks.close()])) };
  } catch (err) {
    await chunks.close();
    throw err;
  }
}

/** A LevelDB lock still held after the wait means another gateway: say so in the one line the operator sees. */
function heldElsewhere(err: unknown, dir: string): unknown {
  if (!isLevelLocked(err)) return err;
  return new InvalidInputError(`the node's database ${dir} is held by another process (is "capstan run" already running on this node?)`);
}

/** The socket client, or TransientError: the LevelDB is held and nobody answers (another command, a gateway starting). */
async function connectOrBusy(socketPath: string): Promise<SocketClient> {
  try {
    return await SocketClient.connect(socketPath);
  } catch (err) {
    throw new TransientError(`the node's database is held by another process and no gateway answers on ${socketPath}`, { cause: err });
  }
}
