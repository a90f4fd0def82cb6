import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { startCli, type CliProcess, cliOk } from './cli.js';
import { freshSchema, type TestPostgres } from './postgres.js';

/**
 * Real `capstan run` gateways for tests, as an operator sets them up:
 * - `single`: one gateway on the embedded default (fs chunks, LevelDB slots);
 * - `shared`: several gateways with one host key, one accounts file, one fs
 *   chunk directory and one PostgreSQL slot store (a fresh schema).
 * Every account gets the same key; `accounts` maps names to the root they
 * share (`alice`'s root is made once; others are given it with --root).
 * Processes are stopped by the caller with stopAllCli (by pid).
 */
export interface ClusterGateway {
  node: string;
  proc: CliProcess;
  port: number;
  http: string;
}

export interface Cluster {
  gateways: ClusterGateway[];
  keyFile: string;
  /** alice's root write cap (every account's root). */
  root: string;
}

/** Sets `key = value` lines that `capstan init` wrote with their defaults (each key once per file, or in `section`). */
export async function setConfig(node: string, values: Record<string, string>): Promise<void> {
  const file = path.join(node, 'capstan.cfg');
  let text = await readFile(file, 'utf8');
  for (const [key, value] of Object.entries(values)) {
    const line = new RegExp(`^${key.replace(/\./g, '\\.')} =.*$`, 'm');
    expect(text, key).toMatch(line);
    text = text.replace(line, `${key} = ${value}`);
  }
  await writeFile(file, text);
}

export async function startClusterGateway(node: string): Promise<ClusterGateway> {
  const proc = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
  const sftp = await proc.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) /m, 'stderr', 60_000);
  const http = await proc.waitFor(/^capstan http on 127\.0\.0\.1:(\d+) /m);
  return { node, proc, port: Number(sftp[1]), http: `http://127.0.0.1:${http[1]}` };
}

export async function startCluster(
  dir: string,
  options: {
    gateways: number;
    postgres?: TestPostgres | undefined;
    users: string[];
    /** With postgres: the chunk store's config keys instead of the shared fs directory (an S3 bucket, say). */
    chunks?: ((shared: string) => Record<string, string>) | undefined;
  },
): Promise<Cluster> {
  const keyFile = path.join(dir, 'id_ed25519');
  const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cluster@test', '-f', keyFile]);
  if (keygen.status !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);
  const shared = path.join(dir, 'shared');
  await mkdir(path.join(shared, 'chunks'), { recursive: true });
  const nodes = Array.from({ length: options.gateways }, (_, i) => path.join(dir, `gw-${i}`));
  for (const node of nodes) await cliOk(node, ['init']);
  if (options.postgres !== undefined) {
    for (const k of ['ssh_host_ed25519_key', 'ssh_host_rsa_key']) await copyFile(path.join(nodes[0]!, 'private', k), path.join(shared, k));
    const dbUrl = new URL(options.postgres.url);
    const password = decodeURIComponent(dbUrl.password);
    dbUrl.password = '';
    const schema = freshSchema('cluster');
    for (const node of nodes) {
      if (password !== '') await writeFile(path.join(node, 'private/postgres-password'), `${password}\n`, { mode: 0o600 });
      await setConfig(node, {
        host_key_files: `${shared}/ssh_host_ed25519_key,${shared}/ssh_host_rsa_key`,
        'accounts.file': `${shared}/accounts`,
        ...(options.chunks?.(shared) ?? { 'fs.dir': `${shared}/chunks` }),
        'slots.backend': 'postgres',
        'slots.postgres.url': dbUrl.toString(),
        'slots.postgres.schema': schema,
      });
    }
  }
  for (const node of nodes) {
    const file = path.join(node, 'capstan.cfg');
    await writeFile(file, (await readFile(file, 'utf8')).replace(/^(\[http\][^[]*?)^listen =.*$/m, '$1listen = 127.0.0.1:0'));
  }
  const [first, ...others] = options.users;
  if (first === undefined) throw new Error('startCluster needs a user');
  const root = (await cliOk(nodes[0]!, ['account', 'add', first, '--key', `${keyFile}.pub`])).trim();
  for (const user of others) await cliOk(nodes[0]!, ['account', 'add', user, '--key', `${keyFile}.pub`, '--root', root]);
  const gateways = await Promise.all(nodes.map(startClusterGateway));
  return { gateways, keyFile, root };
}
