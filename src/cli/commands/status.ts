import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { listAccounts } from '../../auth/index.js';
import { formatHostPort, type NodeConfig } from '../../config/index.js';
import { readPublicKeyFile } from '../../node/secrets.js';
import { out, withNode, type GlobalArgs } from '../context.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** An account server URL without credentials, path or query: enough to recognise it, nothing secret. */
function urlOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparsable)';
  }
}

/**
 * Where the chunk and slot stores are, for the status lines: the fs paths,
 * or the S3 endpoint, bucket and prefix (and the local read cache), or the
 * PostgreSQL server and database. Never a credential: URLs lose their user
 * and password.
 */
export function storeLocations(storage: NodeConfig['storage'], rel: (p: string) => string): { chunks: string; slots: string } {
  const chunks =
    storage.backend === 's3'
      ? `s3 ${storage.s3.endpoint !== undefined ? urlOrigin(storage.s3.endpoint) : '(AWS default endpoint)'} bucket ${storage.s3.bucket}` +
        `${storage.s3.prefix ? ` prefix ${storage.s3.prefix}` : ''}${storage.s3.cacheBytes > 0 ? `, cache ${rel(storage.s3.cacheDir)}` : ''}`
      : `fs ${rel(storage.fsDir)}`;
  const slots = storage.slots.backend === 'postgres' ? `postgres ${postgresWhere(storage.slots.url)}` : `leveldb ${rel(storage.slotsDir)}`;
  return { chunks, slots };
}

/** host:port/database of a PostgreSQL URL (libpq's defaults when there is none). */
function postgresWhere(url: string | undefined): string {
  if (url === undefined) return '(libpq defaults: PGHOST, PGDATABASE, ...)';
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(unparsable)';
  }
}

export const statusCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'status',
  describe: 'Show the node configuration, store usage and number of accounts (never caps)',
  builder: (y: Argv<GlobalArgs>) => y.example('$0 status -d /srv/capstan', 'works while the gateway runs'),
  handler: async (args) => {
    await withNode(args, async ({ config, chunks, slots, shared }) => {
      const rel = (p: string): string => {
        const r = path.relative(config.nodeDir, p);
        return r.startsWith('..') || path.isAbsolute(r) ? p : r;
      };
      const lines: string[] = [];
      lines.push(`node directory   ${config.nodeDir}`);
      lines.push(`nickname         ${config.node.nickname || '(none)'}`);
      lines.push(`gateway          ${shared ? 'running (slot store reached through its socket)' : 'not running'}`);
      lines.push(`sftp             ${config.sftpd.enabled ? `enabled, listen ${formatHostPort(config.sftpd.listen)}` : 'disabled'}`);
      for (const file of config.sftpd.hostKeyFiles) {
        const pub = await readPublicKeyFile(`${file}.pub`).catch(() => undefined);
        lines.push(`host key         ${rel(file)}: ${pub ? `${pub.type} ${pub.fingerprint}` : 'no readable .pub next to it'}`);
      }
      try {
        const { accounts, errors } = await listAccounts(config.sftpd.accountsFile);
        lines.push(
          `accounts         ${accounts.length} in ${rel(config.sftpd.accountsFile)}${errors.length > 0 ? ` (${errors.length} refused lines: see capstan account list)` : ''}`,
        );
      } catch (err) {
        lines.push(`accounts         ${rel(config.sftpd.accountsFile)}: unreadable (${(err as Error).name})`);
      }
      lines.push(`account server   ${config.sftpd.accountsUrl !== undefined ? urlOrigin(config.sftpd.accountsUrl) : 'off'}`);
      lines.push(`http             ${config.http.listen ? formatHostPort(config.http.listen) : 'off'}`);
      lines.push(`convergence      ${config.node.convergence}`);
      lines.push(`log level        ${config.node.logLevel} (${config.node.logFormat})`);
      const where = storeLocations(config.storage, rel);
      const usage = chunks.usage ? await chunks.usage() : undefined;
      lines.push(`chunk store      ${where.chunks}: ${usage ? `${usage.chunks} chunks, ${formatBytes(usage.bytes)}` : 'usage unknown'}`);
      let slotCount = 0;
      for await (const _ of slots.list()) slotCount++;
      lines.push(`slot store       ${where.slots}: ${slotCount} directories`);
      lines.push(`chunk size       ${formatBytes(config.storage.chunkSize)}`);
      await out(lines.join('\n') + '\n');
    });
  },
};
