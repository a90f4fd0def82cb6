import { isIP } from 'node:net';

/**
 * Value types of capstan.cfg keys. Each one parses the raw string (already
 * trimmed) or returns an error phrase of the form "expected X, got "raw"".
 * A type whose values may be secret (a URL can carry a password) never echoes
 * the value.
 */

export interface HostPort {
  /** A hostname or an IP address, IPv6 without brackets. */
  host: string;
  /** 0 asks the OS for a free port (useful in tests). */
  port: number;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; expected: string; echo: boolean };

export interface ValueType<T> {
  /** How the type is named in docs/configuration.md. */
  readonly doc: string;
  parse(raw: string): ParseResult<T>;
}

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const bad = (expected: string, echo = true): ParseResult<never> => ({ ok: false, expected, echo });

/** One key of capstan.cfg: its type, default and meaning (the keys themselves are in schema.ts). */
export interface ConfigKey<T> {
  readonly type: ValueType<T>;
  /** The default as written in capstan.cfg. */
  readonly default: string;
  readonly description: string;
}

export const stringType: ValueType<string> = {
  doc: 'text',
  parse: (raw) => ok(raw),
};

export function enumType<const V extends string>(values: readonly V[]): ValueType<V> {
  return {
    doc: values.join(' \\| '),
    parse: (raw) => ((values as readonly string[]).includes(raw) ? ok(raw as V) : bad(`one of ${values.join(', ')}`)),
  };
}

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

export const boolType: ValueType<boolean> = {
  doc: 'true \\| false',
  parse: (raw) => {
    const v = raw.toLowerCase();
    if (TRUE.has(v)) return ok(true);
    if (FALSE.has(v)) return ok(false);
    return bad('true or false');
  },
};

export function intType(min: number, max: number, unit = ''): ValueType<number> {
  const range = `an integer from ${min} to ${max}${unit ? ` (${unit})` : ''}`;
  return {
    doc: `integer ${min}..${max}${unit ? ` ${unit}` : ''}`,
    parse: (raw) => {
      if (!/^[0-9]{1,15}$/.test(raw)) return bad(range);
      const n = Number(raw);
      return n >= min && n <= max ? ok(n) : bad(range);
    },
  };
}

const SIZE_UNITS: Record<string, number> = { '': 1, kib: 1024, mib: 1024 * 1024 };

/** Bytes, written as a plain number or with a KiB or MiB suffix. */
export function sizeType(min: number, max: number): ValueType<number> {
  const range = `a size from ${formatSize(min)} to ${formatSize(max)} (bytes, or with a KiB or MiB suffix)`;
  return {
    doc: `bytes (or KiB, MiB) ${formatSize(min)}..${formatSize(max)}`,
    parse: (raw) => {
      const m = /^([0-9]{1,10})\s*([A-Za-z]*)$/.exec(raw);
      const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
      if (!m || unit === undefined) return bad(range);
      const n = Number(m[1]) * unit;
      return n >= min && n <= max ? ok(n) : bad(range);
    },
  };
}

/** The shortest exact spelling sizeType reads back: 1MiB, 4KiB, 16777200. */
export function formatSize(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}MiB`;
  if (n % 1024 === 0) return `${n / 1024}KiB`;
  return String(n);
}

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** HOST:PORT, where HOST is a name, an IPv4 address or a bracketed IPv6 address. */
export function parseHostPort(raw: string): HostPort | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(raw);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? { host: m[1], port } : undefined;
  const host = m[2]!;
  return isIP(host) === 4 || HOSTNAME_RE.test(host) ? { host, port } : undefined;
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export const hostPortType: ValueType<HostPort> = {
  doc: 'HOST:PORT',
  parse: (raw) => {
    const hp = parseHostPort(raw);
    return hp ? ok(hp) : bad('HOST:PORT');
  },
};

/**
 * Loopback only: the health and metrics endpoints have no authentication, so
 * they are for a local agent (or a reverse proxy that adds its own).
 */
export const optionalLoopbackHostPortType: ValueType<HostPort | undefined> = {
  doc: 'empty (off) or loopback HOST:PORT',
  parse: (raw) => {
    if (raw === '') return ok(undefined);
    const hp = parseHostPort(raw);
    if (!hp) return bad('empty or HOST:PORT');
    return isLoopbackHost(hp.host) ? ok(hp) : bad('a loopback address (127.0.0.0/8, ::1 or localhost)');
  },
};

/** A path, relative to the node directory unless absolute; never empty. */
export const pathType: ValueType<string> = {
  doc: 'path',
  parse: (raw) => (raw !== '' && !raw.includes('\0') ? ok(raw) : bad('a path')),
};

/** Comma-separated paths, at least one. */
export const pathListType: ValueType<string[]> = {
  doc: 'comma-separated paths',
  parse: (raw) => {
    const items = raw.split(',').map((s) => s.trim());
    return items.length > 0 && items.every((s) => s !== '' && !s.includes('\0')) ? ok(items) : bad('one or more comma-separated paths');
  },
};

/**
 * Empty (off) or a URL with one of `schemes` (without the colon). Never
 * echoed in errors: a URL may carry credentials.
 */
export function optionalUrlOf(schemes: readonly string[], doc: string, expected: string): ValueType<string | undefined> {
  return {
    doc,
    parse: (raw) => {
      if (raw === '') return ok(undefined);
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return bad(expected, false);
      }
      return schemes.includes(url.protocol.slice(0, -1)) ? ok(raw) : bad(expected, false);
    },
  };
}

/** Empty (off) or an http(s) URL. */
export const optionalUrlType = optionalUrlOf(['http', 'https'], 'empty (off) or http(s) URL', 'empty or an http:// or https:// URL');
