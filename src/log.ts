import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino';

/**
 * capstan logs through pino. Every layer takes a Logger from its caller;
 * nothing logs a capability, a key, a password or file content.
 *
 * Two formats of the same records ([node] log_format): `json`, one object a
 * line (log shippers, jq, the fail2ban filter in docs/operations.md match
 * it), and `text`, short lines for a person at a terminal. `auto` picks text
 * when the destination is a terminal.
 */
export type Logger = PinoLogger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'auto' | 'json' | 'text';

export function createLogger(level: LogLevel = 'info', destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const out = destination ?? process.stdout;
  const text = format === 'text' || (format === 'auto' && destination === undefined && process.stdout.isTTY === true);
  return pino({ level, base: { service: 'capstan' }, timestamp: pino.stdTimeFunctions.isoTime }, text ? textDestination(out) : destination);
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every record has, or that the text form shows in its own place. */
const HIDDEN = new Set(['level', 'time', 'service', 'msg', 'pid', 'hostname']);

/**
 * One record as a text line: `12:34:56 INFO  login user=alice method=publickey`.
 * The time is the local clock's (a person reads it); values that are not
 * simple are shown as JSON.
 */
export function formatTextLine(record: Record<string, unknown>): string {
  const time = typeof record.time === 'string' ? new Date(record.time) : new Date();
  const clock = [time.getHours(), time.getMinutes(), time.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const level = (LEVEL_NAMES[Number(record.level)] ?? 'LOG').padEnd(5);
  const fields = Object.entries(record)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
  return `${clock} ${level} ${String(record.msg ?? '')}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}\n`;
}

function textDestination(out: DestinationStream): DestinationStream {
  return {
    write(line: string): void {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      out.write(formatTextLine(record));
    },
  };
}
