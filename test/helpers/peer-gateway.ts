import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { startGateway, type Gateway, type GatewayOptions } from '../sftp/gateway-fixture.js';
import { must } from './backup-tools.js';
import { sftpBatch } from './openssh.js';

/**
 * What the suites that drive one more real client (lftp, curl, PuTTY,
 * paramiko, AsyncSSH, libssh, JSch) share: a gateway on an fs chunk store
 * with small chunks (so a file of a few hundred KiB spans several), a work
 * folder for the client, and the stored bytes read back through another
 * client, OpenSSH's sftp.
 */
export interface PeerGateway {
  gw: Gateway;
  work: string;
  /** A file's stored bytes, fetched with OpenSSH's sftp as alice. */
  stored(path: string): Promise<Buffer>;
  /** `ls -l DIR` as OpenSSH's sftp prints it for alice (capstan's long names: links show their target). */
  listing(dir: string): Promise<string>;
  close(): Promise<void>;
}

/** `options`: more of the gateway's (its host keys, say). */
export async function startPeerGateway(prefix: string, options: GatewayOptions = {}): Promise<PeerGateway> {
  const gw = await startGateway({ fsChunks: true, chunkSize: 256 * 1024, ...options });
  const work = await mkdtemp(join(tmpdir(), prefix));
  return {
    gw,
    work,
    async stored(path) {
      const local = join(work, `stored-${randomBytes(6).toString('hex')}`);
      must(await sftpBatch(gw.alice, work, [`get "${path}" ${local}`]), `sftp get ${path}`);
      return readFile(local);
    },
    async listing(dir) {
      return must(await sftpBatch(gw.alice, work, [`ls -l ${dir}`]), `ls -l ${dir}`).stdout;
    },
    async close() {
      await gw.close();
      await rm(work, { recursive: true, force: true });
    },
  };
}

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Writes `files` (relative names, folders made as needed) under `dir`. */
export async function writeTree(dir: string, files: Record<string, Buffer>): Promise<void> {
  for (const [name, data] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), data);
  }
}

/** Every file under `dir`, relative path → sha256. */
export async function treeDigests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile())
      out[relative(dir, join(entry.parentPath, entry.name))] = sha256Hex(await readFile(join(entry.parentPath, entry.name)));
  }
  return out;
}
