import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { listAccounts } from '../../auth/index.js';
import { formatHostPort, type NodeConfig } from '../../config/index.js';
import { HomeStore } from '../../homes/index.js';
import { readHomesSecret, readPublicKeyFile } from '../../node/secrets.js';
import type { OpenNode } from '../../node/open.js';
import { out, withNode, type GlobalArgs } from '../context.js';
import { jsonOption, outJson } from '../json.js';
import { formatBytes } from '../format.js';

/** An account server URL without credentials, path or query: enough to recognise it, nothing secret. */
function urlOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparsable)';
  }
}

/** Where the chunks are, as `status --json` gives it (docs/cli-json.md). */
export type ChunkStoreWhere =
  | { backend: 'fs'; dir: string }
  | { backend: 's3'; endpoint: string | null; bucket: string; prefix: string; cacheDir: string | null };

/** Where the directory slots are, as `status --json` gives it. */
export type SlotStoreWhere = { backend: 'level'; dir: string } | { backend: 'postgres'; server: string | null };

/**
 * Where the chunk and slot stores are: the fs paths, or the S3 endpoint,
 * bucket and prefix (and the local read cache), or the PostgreSQL server and
 * database. Never a credential: URLs lose their user and password.
 */
export function describeStores(storage: NodeConfig['storage']): { chunks: ChunkStoreWhere; slots: SlotStoreWhere } {
  const chunks: ChunkStoreWhere =
    storage.backend === 's3'
      ? {
          backend: 's3',
          endpoint: storage.s3.endpoint !== undefined ? urlOrigin(storage.s3.endpoint) : null,
          bucket: storage.s3.bucket,
          prefix: storage.s3.prefix,
          cacheDir: storage.s3.cacheBytes > 0 ? storage.s3.cacheDir : null,
        }
      : { backend: 'fs', dir: storage.fsDir };
  const slots: SlotStoreWhere =
    storage.slots.backend === 'postgres'
      ? { backend: 'postgres', server: postgresWhere(storage.slots.url) }
      : { backend: 'level', dir: storage.slotsDir };
  return { chunks, slots };
}

/** The same, as the status lines say it, with paths made relative by `rel`. */
export function storeLocations(storage: NodeConfig['storage'], rel: (p: string) => string): { chunks: string; slots: string } {
  const where = describeStores(storage);
  const c = where.chunks;
  const chunks =
    c.backend === 's3'
      ? `s3 ${c.endpoint ?? '(AWS default endpoint)'} bucket ${c.bucket}${c.prefix ? ` prefix ${c.prefix}` : ''}${c.cacheDir !== null ? `, cache ${rel(c.cacheDir)}` : ''}`
      : `fs ${rel(c.dir)}`;
  const sl = where.slots;
  const slots =
    sl.backend === 'postgres' ? `postgres ${sl.server ?? '(libpq defaults: PGHOST, PGDATABASE, ...)'}` : `leveldb ${rel(sl.dir)}`;
  return { chunks, slots };
}

/** host:port/database of a PostgreSQL URL; null when there is none (libpq's defaults apply). */
function postgresWhere(url: string | undefined): string | null {
  if (url === undefined) return null;
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(unparsable)';
  }
}

/** Everything `status` reports; `status --json` prints exactly this (docs/cli-json.md). Never a cap or a credential. */
export interface StatusReport {
  nodeDir: string;
  nickname: string;
  gatewayRunning: boolean;
  sftp: { enabled: boolean; listen: string };
  hostKeys: { file: string; type: string | null; fingerprint: string | null }[];
  accounts: { file: string; count: number | null; refusedLines: number | null; error: string | null };
  accountServer: string | null;
  /** `users.format` and the origin of `users.url`, or null when no user directory is configured. */
  userDirectory: string | null;
  http: string | null;
  convergence: string;
  logLevel: string;
  logFormat: string;
  chunkStore: ChunkStoreWhere & { chunks: number | null; bytes: number | null };
  /** `homes` is null when there is no homes secret to tell home slots from directories. */
  slotStore: SlotStoreWhere & { directories: number; homes: number | null };
  chunkSize: number;
}

async function collectStatus({ config, chunks, slots, shared }: OpenNode): Promise<StatusReport> {
  const hostKeys: StatusReport['hostKeys'] = [];
  for (const file of config.sftpd.hostKeyFiles) {
    const pub = await readPublicKeyFile(`${file}.pub`).catch(() => undefined);
    hostKeys.push({ file, type: pub?.type ?? null, fingerprint: pub?.fingerprint ?? null });
  }
  let accounts: StatusReport['accounts'];
  try {
    const listed = await listAccounts(config.sftpd.accountsFile);
    accounts = { file: config.sftpd.accountsFile, count: listed.accounts.length, refusedLines: listed.errors.length, error: null };
  } catch (err) {
    accounts = { file: config.sftpd.accountsFile, count: null, refusedLines: null, error: (err as Error).name };
  }
  const where = describeStores(config.storage);
  const usage = chunks.usage ? await chunks.usage() : undefined;
  // Homes of user-directory users and the homes check record share the slot store with directories;
  // the homes secret tells them apart by storage index, without reading a record.
  const homes = existsSync(config.sftpd.homesSecretFile)
    ? new HomeStore({
        slots,
        secret: await readHomesSecret(config.sftpd.homesSecretFile),
        createRoot: () => Promise.reject(new Error('status creates nothing')),
      })
    : undefined;
  const check = Buffer.from(HomeStore.checkStorageIndex());
  let directories = 0;
  let homeSlots = 0;
  for await (const si of slots.list()) {
    if (homes?.isHomeSlot(si) === true) homeSlots++;
    else if (!check.equals(si)) directories++;
  }
  return {
    nodeDir: config.nodeDir,
    nickname: config.node.nickname,
    gatewayRunning: shared,
    sftp: { enabled: config.sftpd.enabled, listen: formatHostPort(config.sftpd.listen) },
    hostKeys,
    accounts,
    accountServer: config.sftpd.accountsUrl !== undefined ? urlOrigin(config.sftpd.accountsUrl) : null,
    userDirectory: config.sftpd.users !== undefined ? `${config.sftpd.users.format} ${urlOrigin(config.sftpd.users.url)}` : null,
    http: config.http.listen ? formatHostPort(config.http.listen) : null,
    convergence: config.node.convergence,
    logLevel: config.node.logLevel,
    logFormat: config.node.logFormat,
    chunkStore: { ...where.chunks, chunks: usage?.chunks ?? null, bytes: usage?.bytes ?? null },
    slotStore: { ...where.slots, directories, homes: homes !== undefined ? homeSlots : null },
    chunkSize: config.storage.chunkSize,
  };
}

function statusLines(report: StatusReport, storage: NodeConfig['storage']): string[] {
  const rel = (p: string): string => {
    const r = path.relative(report.nodeDir, p);
    return r.startsWith('..') || path.isAbsolute(r) ? p : r;
  };
  const lines: string[] = [];
  lines.push(`node directory   ${report.nodeDir}`);
  lines.push(`nickname         ${report.nickname || '(none)'}`);
  lines.push(`gateway          ${report.gatewayRunning ? 'running (slot store reached through its socket)' : 'not running'}`);
  lines.push(`sftp             ${report.sftp.enabled ? `enabled, listen ${report.sftp.listen}` : 'disabled'}`);
  for (const key of report.hostKeys) {
    lines.push(
      `host key         ${rel(key.file)}: ${key.type !== null ? `${key.type} ${key.fingerprint}` : 'no readable .pub next to it'}`,
    );
  }
  const a = report.accounts;
  lines.push(
    a.count !== null
      ? `accounts         ${a.count} in ${rel(a.file)}${a.refusedLines ? ` (${a.refusedLines} refused lines: see capstan account list)` : ''}`
      : `accounts         ${rel(a.file)}: unreadable (${a.error})`,
  );
  lines.push(`account server   ${report.accountServer ?? 'off'}`);
  lines.push(`user directory   ${report.userDirectory ?? 'off'}`);
  lines.push(`http             ${report.http ?? 'off'}`);
  lines.push(`convergence      ${report.convergence}`);
  lines.push(`log level        ${report.logLevel} (${report.logFormat})`);
  const where = storeLocations(storage, rel);
  const c = report.chunkStore;
  lines.push(
    `chunk store      ${where.chunks}: ${c.chunks !== null && c.bytes !== null ? `${c.chunks} chunks, ${formatBytes(c.bytes)}` : 'usage unknown'}`,
  );
  const { directories, homes: homeCount } = report.slotStore;
  lines.push(
    `slot store       ${where.slots}: ${directories} directories${homeCount !== null ? `, ${homeCount} homes` : ' (homes not counted: no homes secret)'}`,
  );
  lines.push(`chunk size       ${formatBytes(report.chunkSize)}`);
  return lines;
}

interface StatusArgs extends GlobalArgs {
  json: boolean;
}

export const statusCommand: CommandModule<GlobalArgs, StatusArgs> = {
  command: 'status',
  describe: 'Show the node configuration, store usage and number of accounts (never caps)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('json', jsonOption('one JSON document (fields: docs/cli-json.md)'))
      .example('$0 status -d /srv/capstan', 'works while the gateway runs')
      .example('$0 status --json | jq .chunkStore.bytes', 'bytes stored') as unknown as Argv<StatusArgs>,
  handler: async (args) => {
    await withNode(args, async (node) => {
      const report = await collectStatus(node);
      if (args.json) await outJson(report);
      else await out(`${statusLines(report, node.config.storage).join('\n')}\n`);
    });
  },
};
