import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../tree/index.js';
import {
  boolType, enumType, formatSize, hostPortType, intType, optionalLoopbackHostPortType, optionalUrlType,
  pathListType, pathType, sizeType, stringType, type ValueType,
} from './types.js';

/**
 * Every key capstan.cfg may hold: its type, default and meaning. This is the
 * single source of truth: the loader accepts exactly these keys, `capstan
 * init` writes its template from them, and docs/configuration.md's table is
 * checked against renderConfigTable() by test/config/docs.test.ts, so the
 * documentation cannot drift from the code.
 *
 * Defaults are written as they would appear in the file, and parsed by the
 * key's own type (a test checks that every default parses).
 */

export interface ConfigKey<T> {
  readonly type: ValueType<T>;
  /** The default as written in capstan.cfg. */
  readonly default: string;
  readonly description: string;
}

function key<T>(type: ValueType<T>, def: string, description: string): ConfigKey<T> {
  return { type, default: def, description };
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const CONVERGENCE_MODES = ['per-account', 'per-gateway'] as const;

export const SCHEMA = {
  node: {
    nickname: key(stringType, '', 'A name for this node, shown by `capstan status` and in logs.'),
    log_level: key(enumType(LOG_LEVELS), 'info', 'Least severe level of the JSON log lines written to stdout.'),
    convergence: key(
      enumType(CONVERGENCE_MODES),
      'per-account',
      'Convergence domain for file encryption keys: identical files deduplicate only within one account (per-account), or across all accounts (per-gateway, which lets every user confirm whether any other user stores a given file).',
    ),
  },
  sftpd: {
    enabled: key(boolType, 'true', 'Run the SFTP server. When false, `capstan run` serves only the slot socket and the HTTP listener.'),
    listen: key(hostPortType, '127.0.0.1:8022', 'Address the SFTP server listens on. Use 0.0.0.0:PORT or [::]:PORT to accept remote clients.'),
    host_key_files: key(
      pathListType,
      'private/ssh_host_ed25519_key,private/ssh_host_rsa_key',
      'OpenSSH private host keys, relative to the node directory. Gateways behind one load balancer should share the same files.',
    ),
    'accounts.file': key(pathType, 'private/accounts', 'The accounts file (users, their keys or password hashes, their root caps). Reloaded when it changes.'),
    'accounts.url': key(optionalUrlType, '', 'Account server asked about password logins of users not in the accounts file (Tahoe-LAFS contract, see docs/operations.md). Empty: off.'),
    'accounts.url.cache_ttl': key(intType(0, 86_400, 'seconds'), '3600', 'How long an account server answer is cached.'),
    'accounts.url.timeout': key(intType(1, 300, 'seconds'), '10', 'Timeout of one account server request.'),
    idle_timeout: key(intType(0, 604_800, 'seconds'), '900', 'Close SFTP sessions idle this long. 0: never.'),
  },
  storage: {
    backend: key(enumType(['fs'] as const), 'fs', 'Where chunks live. Only fs (a local directory) so far.'),
    'fs.dir': key(pathType, 'store/chunks', 'Directory of the fs chunk store, relative to the node directory.'),
    'fs.fsync': key(boolType, 'true', 'fsync every chunk before an upload is acknowledged. Off is faster and can lose recent uploads in a power cut.'),
    'slots.dir': key(pathType, 'store/slots', 'LevelDB directory holding the directory slots, relative to the node directory.'),
    chunk_size: key(
      sizeType(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
      formatSize(DEFAULT_CHUNK_SIZE),
      'Plaintext bytes per chunk of an immutable file (the default is the tree layer\'s). Changing it affects only new uploads, which then no longer deduplicate with identical old ones.',
    ),
  },
  http: {
    listen: key(
      optionalLoopbackHostPortType,
      '',
      'Loopback address of the HTTP listener serving /healthz and /metrics. Empty: off. Unauthenticated, hence loopback only.',
    ),
  },
} as const;

export type Schema = typeof SCHEMA;
export type SectionName = keyof Schema;

type ValueOf<K> = K extends ConfigKey<infer T> ? T : never;
/** The parsed values of capstan.cfg, keyed exactly as in the file. */
export type RawConfig = { [S in SectionName]: { [K in keyof Schema[S]]: ValueOf<Schema[S][K]> } };

/** Every (section, key, spec) triple, in schema order. */
export function schemaEntries(): { section: SectionName; key: string; spec: ConfigKey<unknown> }[] {
  const out: { section: SectionName; key: string; spec: ConfigKey<unknown> }[] = [];
  for (const section of Object.keys(SCHEMA) as SectionName[]) {
    for (const [name, spec] of Object.entries(SCHEMA[section])) {
      out.push({ section, key: name, spec: spec as ConfigKey<unknown> });
    }
  }
  return out;
}
