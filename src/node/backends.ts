import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { NodeConfig } from '../config/index.js';
import type { SlotsConfig } from '../config/load.js';
import { LevelDefenderStore } from '../defender/level-store.js';
import { PostgresDefenderStore } from '../defender/postgres-store.js';
import type { DefenderStore } from '../defender/store.js';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../log.js';
import { PostgresUsageLedger, UsageBook, type UsageLedger } from '../quota/index.js';
import { CachingChunkStore } from '../store/chunks/caching.js';
import { openS3Credentials, S3ChunkStore } from '../store/chunks/s3/index.js';
import { FsChunkStore, type ChunkStore } from '../store/index.js';
import { PostgresObjectIndex } from '../store/packs/postgres-index.js';
import { PostgresSlotStore } from '../store/slots/postgres/index.js';

/**
 * Opening each backend a node's configuration names: the chunk store (fs,
 * S3 behind its read cache), the PostgreSQL slot store, object index and
 * defender store. Used by openNode (open.ts), openCommandStores (stores.ts)
 * and the gateway.
 */

/**
 * The password for a postgres slot store: the first line of the password
 * file if it exists (it must not be readable by others: it guards every
 * directory), else nothing, and pg falls back to PGPASSWORD and ~/.pgpass.
 */
async function readPostgresPassword(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InvalidInputError(`cannot read the postgres password file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  return line === '' ? undefined : line;
}

/** Opens ([storage] slots.backend = postgres) the shared slot store, creating or migrating its schema. */
export async function openPostgresSlots(slots: PostgresSlotsConfig, logger?: Logger): Promise<PostgresSlotStore> {
  return PostgresSlotStore.open({ ...(await slotsDatabase(slots, logger)), poolSize: slots.poolSize });
}

type PostgresSlotsConfig = Extract<SlotsConfig, { backend: 'postgres' }>;

/** The slots' database and schema (the password file read now): where the tables beside the slots live too. */
async function slotsDatabase(
  slots: PostgresSlotsConfig,
  logger: Logger | undefined,
): Promise<{ url: string | undefined; password: string | undefined; schema: string; logger: Logger | undefined }> {
  return { url: slots.url, password: await readPostgresPassword(slots.passwordFile), schema: slots.schema, logger };
}

/** The object index several gateways share: tables beside the slots, in the same database and schema. */
export async function openPostgresObjectIndex(slots: PostgresSlotsConfig, logger?: Logger): Promise<PostgresObjectIndex> {
  return PostgresObjectIndex.open(await slotsDatabase(slots, logger));
}

/**
 * The defender's store for `capstan run`: with postgres slots, tables beside
 * the slots in the same database and schema (shared by every gateway, its
 * own small pool); otherwise a LevelDB in `[defender] state_dir`.
 */
export async function openDefenderStore(config: NodeConfig, logger?: Logger): Promise<DefenderStore> {
  const slots = config.storage.slots;
  if (slots.backend !== 'postgres') return LevelDefenderStore.open(config.defender.stateDir, { maxEntries: config.defender.maxEntries });
  return PostgresDefenderStore.open(await slotsDatabase(slots, logger));
}

/**
 * The per-account usage counters (docs/spec/quotas.md): with postgres slots
 * a table beside them, shared by every gateway (so quotas hold across
 * gateways); otherwise the JSON file `[quota] usage_file`. `owner` is the
 * gateway (see UsageBook); a CLI command is not.
 */
export async function openUsageLedger(config: NodeConfig, options: { owner?: boolean; logger?: Logger } = {}): Promise<UsageLedger> {
  const slots = config.storage.slots;
  if (slots.backend !== 'postgres') {
    await mkdir(dirname(config.quota.usageFile), { recursive: true, mode: 0o700 });
    return UsageBook.open(config.quota.usageFile, options);
  }
  return PostgresUsageLedger.open(await slotsDatabase(slots, options.logger));
}

/**
 * Opens the chunk store `[storage] backend` names: the fs directory, or the
 * S3 bucket (see openS3ChunkStore) behind a bounded local read cache
 * (`s3.cache.*`, unless `cache` is false or the size is 0).
 */
export async function openChunkStore(config: NodeConfig, options: { cache?: boolean; logger?: Logger } = {}): Promise<ChunkStore> {
  const { storage } = config;
  if (storage.backend !== 's3') return FsChunkStore.open(storage.fsDir, { fsync: storage.fsFsync });
  return withReadCache(config, await openS3ChunkStore(config, options.logger), options.cache);
}

/** `store` behind the node's S3 read cache, unless `cache` is false or `s3.cache.size` is 0. */
export async function withReadCache(config: NodeConfig, store: ChunkStore, cache = true): Promise<ChunkStore> {
  const { s3 } = config.storage;
  if (!cache || s3.cacheBytes === 0) return store;
  try {
    return await CachingChunkStore.open(store, { dir: s3.cacheDir, maxBytes: s3.cacheBytes });
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** The bucket of `[storage] s3.*` (credentials from `s3.credentials`, else the AWS chain: see openS3Credentials). */
export async function openS3ChunkStore(config: NodeConfig, logger?: Logger): Promise<S3ChunkStore> {
  const s3 = config.storage.s3;
  const { source, origin } = await openS3Credentials(s3.credentialsFile, {
    // The gateway logs them; a command has no log, and says them on stderr.
    warn: logger
      ? (message) => logger.warn({ event: 's3_credentials_warning' }, message)
      : (message) => process.stderr.write(`capstan: s3 credentials: ${message}\n`),
  });
  logger?.info(
    { event: 's3_credentials', origin },
    `S3 credentials from ${origin === 'file' ? 'the s3.credentials file' : 'the AWS credential chain'}`,
  );
  return new S3ChunkStore({
    endpoint: s3.endpoint!, // resolveConfig refuses backend = s3 without one
    region: s3.region,
    bucket: s3.bucket,
    prefix: s3.prefix,
    addressing: s3.addressing,
    credentials: source,
    concurrency: s3.concurrency,
    timeoutMs: s3.timeoutSeconds * 1000,
    retry: { retries: s3.retries, initialMs: 100, maxMs: 5_000 },
  });
}
