import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Finished, ProcessRegistry } from './procs.js';
import type { BenchServer } from './servers.js';

/**
 * The one client every server is measured with: OpenSSH's `sftp -b`, the
 * same options and cipher for all, so the client's cost is the same on
 * each side and the difference is the server's.
 */

export interface SftpClient {
  readonly registry: ProcessRegistry;
  /** Private key (its .pub is authorized on every server). */
  readonly keyFile: string;
  /** Where batch files are written. */
  readonly batchDir: string;
  /** Negotiated for every connection, e.g. aes128-gcm@openssh.com. */
  cipher: string;
}

export const CIPHER_PREFERENCE = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'];

let batchCounter = 0;

/** A path quoted for an sftp batch line (sftp splits on spaces and honours double quotes). */
export function q(p: string): string {
  return `"${p.replace(/["\\]/g, '\\$&')}"`;
}

function sftpArgs(client: SftpClient, server: BenchServer, batchFile: string): string[] {
  return [
    '-q',
    '-b',
    batchFile,
    '-i',
    client.keyFile,
    '-F',
    '/dev/null',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    '-o',
    `Ciphers=${client.cipher}`,
    '-P',
    String(server.port),
    `${server.user}@127.0.0.1`,
  ];
}

/**
 * Runs one sftp session: `cd` to the server's work folder, then `commands`.
 * Throws (with sftp's stderr) if the batch fails, since a failed command
 * would otherwise be timed as a fast one.
 */
export async function sftpBatch(client: SftpClient, server: BenchServer, commands: string[], timeoutMs = 900_000): Promise<Finished> {
  const r = await startBatch(client, server, commands, timeoutMs);
  if (r.code !== 0) {
    throw new Error(
      `sftp to ${server.name} failed (${r.signal ?? r.code}) in batch [${summarise(commands)}]: ${r.stderr.trim().slice(-2000)}`,
    );
  }
  return r;
}

/** Like sftpBatch but returns a failed run instead of throwing. */
export async function startBatch(client: SftpClient, server: BenchServer, commands: string[], timeoutMs = 900_000): Promise<Finished> {
  const batchFile = path.join(client.batchDir, `batch-${process.pid}-${++batchCounter}.txt`);
  await writeFile(batchFile, [`cd ${q(server.home)}`, ...commands].join('\n') + '\n');
  return client.registry.run('sftp', sftpArgs(client, server, batchFile), {
    timeoutMs,
    env: { ...process.env, SSH_AUTH_SOCK: '' },
  });
}

function summarise(commands: string[]): string {
  return commands.length <= 3 ? commands.join('; ') : `${commands.slice(0, 2).join('; ')}; … ${commands.length} commands`;
}

/**
 * A local command sftp runs between two remote commands (`!cmd` in a
 * batch): prints a nanosecond timestamp. sftp runs batch lines strictly in
 * order and a put, get or ls completes before the next line starts, so the
 * time between two marks is the server's work without the session's setup
 * (key exchange, authentication) and teardown; costs one fork, ~ 1-3 ms.
 */
const MARK = '!date +BENCH-MARK%s%N';
// Not anchored: sftp's own stdout is block-buffered, so date's line (one
// write, atomic on a pipe) can land in the middle of one of sftp's lines.
const MARK_LINE = /BENCH-MARK(\d+)\n/g;

export interface Timed extends Finished {
  /** Seconds between the marks around the timed commands. */
  seconds: number;
  /** Epoch nanoseconds of the two marks, to combine concurrent sessions. */
  startNs: bigint;
  endNs: bigint;
}

/** Runs `setup` untimed, then `timed` between two marks, then `after` untimed, in one session; throws on failure. */
export async function timedBatch(
  client: SftpClient,
  server: BenchServer,
  setup: string[],
  timed: string[],
  after: string[] = [],
): Promise<Timed> {
  const r = await sftpBatch(client, server, [...setup, MARK, ...timed, MARK, ...after]);
  return withMarks(r, server);
}

export function withMarks(r: Finished, server: BenchServer): Timed {
  const marks = [...r.stdout.matchAll(MARK_LINE)].map((m) => BigInt(m[1]!));
  if (marks.length !== 2) throw new Error(`sftp to ${server.name}: expected 2 timing marks in the output, found ${marks.length}`);
  const [startNs, endNs] = marks as [bigint, bigint];
  return { ...r, stdout: r.stdout.replace(MARK_LINE, ''), seconds: Number(endNs - startNs) / 1e9, startNs, endNs };
}

/** The first cipher of CIPHER_PREFERENCE that every server accepts; throws if none does. */
export async function pickCipher(client: SftpClient, servers: BenchServer[]): Promise<string> {
  const failures: string[] = [];
  for (const cipher of CIPHER_PREFERENCE) {
    client.cipher = cipher;
    const results = await Promise.all(servers.map((s) => startBatch(client, s, ['pwd'], 60_000)));
    if (results.every((r) => r.code === 0)) return cipher;
    failures.push(`${cipher}: ${results.map((r, i) => `${servers[i]!.name} ${r.code === 0 ? 'ok' : r.stderr.trim()}`).join(', ')}`);
  }
  throw new Error(`no cipher works with every server: ${failures.join('; ')}`);
}

/** Lines of a batch's output (marks removed) that are not the echoed `sftp> command` lines. */
export function outputLines(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l !== '' && !l.startsWith('sftp>'));
}
