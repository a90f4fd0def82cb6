import { formatHostPort, type NodeConfig } from '../config/index.js';
import { createLogger, type Logger } from '../log.js';
import type { Gateway } from '../node/gateway.js';
import { CLI_VERSION } from './version.js';

/**
 * What `run` and `demo` share: start the gateway, say where it listens, and
 * stop cleanly on SIGTERM or SIGINT.
 *
 * Human-readable lines go to stderr; stdout carries only the log (JSON when
 * it is not a terminal, see [node] log_format), so it can be piped to a log
 * shipper (or jq) untouched.
 */

export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The http line, if the listener is on; printed after listeningLine. */
export function httpLine(gateway: Gateway): string | undefined {
  return gateway.http ? `capstan http on ${formatHostPort(gateway.http)} (/healthz, /metrics)` : undefined;
}

export function listeningLine(gateway: Gateway): string {
  if (!gateway.sftp) return 'capstan running without SFTP ([sftpd] enabled = false)';
  const key = gateway.sftp.hostKeys.find((k) => k.type === 'ssh-ed25519') ?? gateway.sftp.hostKeys[0];
  return `capstan listening on ${formatHostPort(gateway.sftp.address)}${key ? ` (${key.type} ${key.fingerprint})` : ''}`;
}

export async function startLogged(config: NodeConfig): Promise<{ gateway: Gateway; log: Logger }> {
  const log = createLogger(config.node.logLevel, undefined, config.node.logFormat);
  log.info(
    { event: 'start', nodeDir: config.nodeDir, version: CLI_VERSION, pid: process.pid, nickname: config.node.nickname || undefined },
    'capstan starting',
  );
  // Loaded here, not at the top: only run and demo need the SFTP stack, and
  // every other command starts faster (and works) without it.
  const { startGateway } = await import('../node/gateway.js');
  try {
    return { gateway: await startGateway(config, log), log };
  } catch (err) {
    // The reason goes to stderr (main.ts); the log records that the start failed.
    log.fatal({ event: 'start_failed', err: (err as Error)?.name, code: (err as NodeJS.ErrnoException)?.code }, 'capstan could not start');
    throw err;
  }
}

/** Resolves once a signal came and the gateway has stopped. A second signal exits at once. */
export function stopOnSignal(gateway: Gateway, log: Logger): Promise<void> {
  const graceMs = gateway.shutdownGraceMs;
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ event: 'shutdown_forced', signal }, 'second signal: exiting without waiting');
        process.exit(1);
      }
      stopping = true;
      log.info({ event: 'shutdown', signal, graceMs }, 'shutting down');
      // A close that hangs past the grace period (a wedged disk) must not keep the process forever.
      const watchdog = setTimeout(() => {
        log.error({ event: 'shutdown_timeout' }, 'shutdown took too long; exiting');
        process.exit(1);
      }, graceMs + 5_000);
      watchdog.unref();
      void gateway.stop().then(() => {
        clearTimeout(watchdog);
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        log.info({ event: 'stopped' }, 'capstan stopped');
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
