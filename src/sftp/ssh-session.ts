import type { AcceptConnection, ServerChannel, Session } from 'ssh2';
import type { Logger } from '../log.js';
import type { SftpByteStream } from './protocol/transport.js';
import { SCP_COMMAND } from './scp/command.js';

/** What any non-SFTP use of the service gets on stderr, before exit status 1. */
export const SFTP_ONLY_MESSAGE = 'This service allows sftp connections only.\n';

/**
 * What legacy scp gets (`scp -O`, and OpenSSH's scp before 9.0, which execs
 * `scp -t` or `scp -f`) when [sftpd] legacy_scp is off: the same refusal,
 * and the way to the SFTP mode its release has. Ubuntu 22.04 ships 8.9,
 * where `scp -s` works.
 */
export const LEGACY_SCP_MESSAGE = `${SFTP_ONLY_MESSAGE}To copy with scp over SFTP: scp -s (OpenSSH 8.7 to 8.9), or without -O (9.0 and later). Older clients: use sftp or sshfs.\n`;

/**
 * What `rsync host:…` gets (it execs `rsync --server` on the other end,
 * which needs rsync's own protocol): the refusal, and the ways rsync users
 * reach the gateway.
 */
export const RSYNC_MESSAGE = `${SFTP_ONLY_MESSAGE}rsync needs its own program on the server: mount the gateway with sshfs and rsync into the mount, or use rclone's sftp backend.\n`;

/** The refusal an exec gets: the reason, and a way for the clients that send this command. */
function refusalFor(command: string): string {
  if (SCP_COMMAND.test(command)) return LEGACY_SCP_MESSAGE;
  if (/^\s*rsync\s/.test(command)) return RSYNC_MESSAGE;
  return SFTP_ONLY_MESSAGE;
}

export interface SessionChannelOptions {
  logger: Logger;
  /** Starts serving an accepted `sftp` subsystem channel (raw bytes: src/sftp/protocol owns the packets). */
  startSftp(channel: SftpByteStream): void;
  /** False refuses the channel (too many sessions, shutting down). */
  mayStartSftp(): boolean;
  /**
   * The few commands answered without a shell (checksum-exec.ts): a result
   * for a command it serves, undefined for everything else (refused).
   * `stdin` hands the exec's standard input to `consume`, piece by piece,
   * to its end (readStdin's bounds); nothing of it is kept.
   */
  exec?(command: string, stdin: StdinReader): Promise<ExecResult> | undefined;
  /**
   * An exec that speaks a protocol of its own on the channel (legacy scp,
   * scp/scp.ts): true if it took the channel, which is then its own to
   * answer and close; false lets `exec` and the refusal have it.
   */
  execChannel?(command: string, channel: ServerChannel): boolean;
}

/** Reads an exec's standard input to its end, handing each piece to `consume` as it comes. */
export type StdinReader = (consume: (piece: Uint8Array) => void) => Promise<void>;

/** Standard input an exec may send before its end (a checksum of stdin; rclone sends none). */
export const MAX_STDIN_BYTES = 1024 * 1024;
/** How long an exec waits for the end of its standard input (`ssh host md5sum` typed at a terminal never ends it). */
export const STDIN_TIMEOUT_MS = 10_000;

/** Standard input that could not be read whole: too long, or its end never came. */
export class StdinError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StdinError';
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * An SSH session channel: only the `sftp` subsystem is served.
 *
 * - exec of `scp -t` and `scp -f` (legacy scp) is served over SFTP
 *   requests of this connection (scp/scp.ts; opts.execChannel), unless
 *   [sftpd] legacy_scp is off;
 * - exec of `sha256sum`, `md5sum` or `sha1sum` with paths is answered
 *   from the manifests, and without one from its standard input
 *   (checksum-exec.ts; opts.exec), no shell involved;
 * - any other exec, and shell, are accepted just long enough to write
 *   SFTP_ONLY_MESSAGE to stderr and exit with status 1, so `ssh host ls`,
 *   legacy `scp -O` when not served (LEGACY_SCP_MESSAGE) and rsync
 *   (RSYNC_MESSAGE) tell the
 *   user why instead of a bare "channel failure";
 * - pty-req is answered with success but allocates nothing: the shell or
 *   exec that follows is what gets the message. Failing it instead would
 *   make `ssh -tt` die with "PTY allocation request failed" and never show
 *   why;
 * - the `sftp` subsystem is accepted as a plain channel (no `sftp`
 *   listener, so ssh2 does not put its own SFTP server on it): capstan
 *   speaks the SFTP packets itself (src/sftp/protocol);
 * - other subsystems, x11, agent forwarding, env and signals have no
 *   listener here, so ssh2 refuses them; port forwarding (tcpip,
 *   streamlocal) is refused at the connection for the same reason.
 */
export function serveSessionChannel(accept: AcceptConnection<Session>, opts: SessionChannelOptions): void {
  const session = accept();
  session.on('pty', (acceptPty) => acceptPty?.());
  session.on('exec', (acceptExec, _reject, info) => {
    // Accepted either way: a refusal is a message on the channel, not a channel failure.
    const channel = acceptExec();
    if (channel !== undefined && opts.execChannel?.(info.command, channel) === true) return;
    const answer = opts.exec?.(info.command, (consume) => readStdin(channel, consume));
    if (answer !== undefined) {
      void answer.then(
        (result) => finishExec(channel, result),
        (err: unknown) => {
          opts.logger.warn({ event: 'exec_failed', err: (err as Error)?.name }, 'checksum command failed');
          finishExec(channel, { stdout: '', stderr: 'checksum: internal error\n', code: 1 });
        },
      );
      return;
    }
    opts.logger.info({ event: 'exec_refused', commandBytes: Buffer.byteLength(info.command) }, 'exec refused: sftp only');
    refuseWithMessage(channel, refusalFor(info.command));
  });
  session.on('shell', (acceptShell) => {
    opts.logger.info({ event: 'shell_refused' }, 'shell refused: sftp only');
    refuseWithMessage(acceptShell(), SFTP_ONLY_MESSAGE);
  });
  session.on('subsystem', (acceptSubsystem, rejectSubsystem, info) => {
    if (info.name !== 'sftp' || !opts.mayStartSftp()) {
      rejectSubsystem?.();
      return;
    }
    const channel = acceptSubsystem?.();
    if (channel !== undefined) opts.startSftp(channel);
  });
}

/** Hands what the client sends on `channel` to `consume` until its end, within MAX_STDIN_BYTES and STDIN_TIMEOUT_MS. */
function readStdin(channel: ServerChannel | undefined, consume: (piece: Uint8Array) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (channel === undefined) return resolve();
    let bytes = 0;
    const done = (err?: StdinError): void => {
      clearTimeout(timer);
      channel.off('data', onData);
      channel.off('end', onEnd);
      channel.off('close', onEnd);
      if (err !== undefined) reject(err);
      else resolve();
    };
    const onData = (piece: Buffer): void => {
      bytes += piece.length;
      if (bytes > MAX_STDIN_BYTES) done(new StdinError('File too large'));
      else consume(piece);
    };
    const onEnd = (): void => done();
    const timer = setTimeout(() => done(new StdinError('Connection timed out')), STDIN_TIMEOUT_MS);
    channel.on('data', onData);
    channel.once('end', onEnd);
    channel.once('close', onEnd);
  });
}

function finishExec(channel: ServerChannel | undefined, result: ExecResult): void {
  if (channel === undefined) return;
  if (result.stdout !== '') channel.write(result.stdout);
  if (result.stderr !== '') channel.stderr.write(result.stderr);
  channel.exit(result.code);
  channel.end();
}

/** Writes `message` to the channel's stderr and exits with status 1. */
export function refuseWithMessage(channel: ServerChannel | undefined, message: string): void {
  if (channel === undefined) return;
  channel.stderr.write(message);
  channel.exit(1);
  channel.end();
}
