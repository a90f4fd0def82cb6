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

/**
 * Starts the gateway with SIGTERM and SIGINT already caught: installed before
 * anything is opened, so a signal that comes while the gateway starts
 * (opening stores, taking the node lock, binding ports) does not end the
 * process by Node's default, mid-way and without a clean stop. Such a
 * signal is kept, and `stopped` stops the gateway as soon as it is up.
 */
export async function startLogged(config: NodeConfig): Promise<{ gateway: Gateway; log: Logger; stopped: () => Promise<void> }> {
  const log = createLogger(config.node.logLevel, undefined, config.node.logFormat);
  const signals = catchStopSignals(log);
  log.info(
    { event: 'start', nodeDir: config.nodeDir, version: CLI_VERSION, pid: process.pid, nickname: config.node.nickname || undefined },
    'capstan starting',
  );
  try {
    // Loaded here, not at the top: only run and demo need the SFTP stack, and
    // every other command starts faster (and works) without it.
    const { startGateway } = await import('../node/gateway.js');
    const gateway = await startGateway(config, log);
    return { gateway, log, stopped: () => signals.stopWhenSignalled(gateway) };
  } catch (err) {
    signals.release();
    // The reason goes to stderr (main.ts); the log records that the start failed.
    log.fatal({ event: 'start_failed', err: (err as Error)?.name, code: (err as NodeJS.ErrnoException)?.code }, 'capstan could not start');
    throw err;
  }
}

interface StopSignals {
  /** Resolves once a signal came and `gateway` has stopped; stops it at once if a signal came while it started. */
  stopWhenSignalled(gateway: Gateway): Promise<void>;
  /** Takes the handlers off again (the start failed: there is nothing to stop). */
  release(): void;
}

/** The handlers of startLogged. A second signal exits at once, as does a stop that outlives the grace period. */
function catchStopSignals(log: Logger): StopSignals {
  let gateway: Gateway | undefined;
  let early: NodeJS.Signals | undefined;
  let stopping = false;
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));

  const release = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  const stop = (running: Gateway, signal: NodeJS.Signals): void => {
    stopping = true;
    const graceMs = running.shutdownGraceMs;
    log.info({ event: 'shutdown', signal, graceMs }, 'shutting down');
    // A close that hangs past the grace period (a wedged disk) must not keep the process forever.
    const watchdog = setTimeout(() => {
      log.error({ event: 'shutdown_timeout' }, 'shutdown took too long; exiting');
      process.exit(1);
    }, graceMs + 5_000);
    watchdog.unref();
    void running.stop().then(() => {
      clearTimeout(watchdog);
      release();
      log.info({ event: 'stopped' }, 'capstan stopped');
      resolveStopped();
    });
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (stopping || early !== undefined) {
      log.warn({ event: 'shutdown_forced', signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    if (gateway === undefined) {
      early = signal;
      log.info({ event: 'shutdown_pending', signal }, 'signal while starting: stopping once started');
      return;
    }
    stop(gateway, signal);
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  return {
    stopWhenSignalled(started) {
      gateway = started;
      if (early !== undefined) stop(started, early);
      return stopped;
    },
    release,
  };
}
