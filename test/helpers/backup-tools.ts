import { join } from 'node:path';
import { run, type RunResult } from './openssh.js';

/**
 * restic and rclone driven over a gateway's SFTP, as a backup client runs
 * them: restic through `ssh -s sftp`, rclone with an on-the-fly sftp remote.
 * Neither reads the machine user's configuration (HOME and the config file
 * are in the test's directory).
 */
export interface SftpAccount {
  port: number;
  user: string;
  keyFile: string;
}

export const RESTIC_PASSWORD = 'correct horse battery staple';
const SSH_OPTIONS = '-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes';

/** restic on the repository `repo` (an absolute path in the account) over SFTP, its cache under `work`. */
export function resticOverSftp(account: SftpAccount, work: string, repo: string, args: string[]): Promise<RunResult> {
  const command = `ssh ${SSH_OPTIONS} -i ${account.keyFile} -o IdentitiesOnly=yes -p ${account.port} ${account.user}@127.0.0.1 -s sftp`;
  return resticLocal(`sftp:capstan:${repo}`, work, ['-o', `sftp.command=${command}`, ...args]);
}

/** restic on a repository named by `-r` (a local directory, or an sftp: location with its options in `args`). */
export function resticLocal(repo: string, work: string, args: string[]): Promise<RunResult> {
  return run('restic', ['-r', repo, '--cache-dir', join(work, 'restic-cache'), ...args], {
    env: { RESTIC_PASSWORD, HOME: work },
    timeoutMs: 180_000,
  });
}

/** rclone with the remote `:sftp:` on the account (no RCLONE_* variable of the environment applies). */
export function rcloneOverSftp(account: SftpAccount, work: string, args: string[]): Promise<RunResult> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RCLONE_')));
  return run(
    'rclone',
    [
      '--config',
      join(work, 'rclone.conf'),
      '--sftp-host',
      '127.0.0.1',
      '--sftp-port',
      String(account.port),
      '--sftp-user',
      account.user,
      '--sftp-key-file',
      account.keyFile,
      '--retries',
      '1',
      '--low-level-retries',
      '1',
      ...args,
    ],
    { env: { ...env, HOME: work }, timeoutMs: 180_000 },
  );
}

/** Throws with the tool's output unless it exited 0. */
export function must(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}
