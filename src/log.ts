import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

/**
 * capstan logs JSON lines (pino). Every layer takes a Logger from its caller;
 * nothing logs a capability, a key, a password or file content.
 */
export type Logger = PinoLogger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(level: LogLevel = 'info', destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'capstan' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
