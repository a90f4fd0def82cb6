import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ConvergenceMode } from '../crypto/convergence.js';
import type { LogFormat, LogLevel } from '../log.js';
import type { ChecksumAlgorithm } from '../tree/index.js';
import { ConfigError, parseIni, type IniDocument } from './ini.js';
import { SCHEMA, schemaEntries, type RawConfig, type SectionName } from './schema.js';
import { resolveDefender, resolveLimits, type DefenderConfig } from './security-schema.js';
import type { Limits } from '../sftp/limits.js';
import { resolveEvents, type EventsSettings } from './events-schema.js';
import type { UserDirectorySettings } from '../users/index.js';
import type { HostPort } from './types.js';

/** The file inside a node directory that holds its configuration. */
export const CONFIG_FILE = 'capstan.cfg';

/** capstan.cfg, validated, with paths made absolute against the node directory. */
export interface NodeConfig {
  nodeDir: string;
  node: { nickname: string; logLevel: LogLevel; logFormat: LogFormat; convergence: ConvergenceMode };
  sftpd: {
    enabled: boolean;
    listen: HostPort;
    hostKeyFiles: string[];
    accountsFile: string;
    /** undefined: no account server. */
    accountsUrl?: string;
    accountsUrlCacheTtlSeconds: number;
    accountsUrlTimeoutSeconds: number;
    /** [sftpd] users.*: a central user directory; undefined when users.url is empty. */
    users?: UsersConfig;
    /** The homes secret (users.homes_secret), absolute; read only when homes are used. */
    homesSecretFile: string;
    /** 0: sessions never time out. */
    idleTimeoutSeconds: number;
    /** [sftpd] legacy_scp. */
    legacyScp: boolean;
    /** [sftpd] rsa_sha1: accept `ssh-rsa` (SHA-1) user-key signatures. */
    rsaSha1: boolean;
    /** [sftpd] kex_sha1: offer diffie-hellman-group14-sha1. */
    kexSha1: boolean;
    /** Load balancers whose connections carry a PROXY protocol header (empty: none). */
    proxyProtocolFrom: string[];
  };
  storage: {
    backend: 'fs' | 's3';
    fsDir: string;
    fsFsync: boolean;
    slotsDir: string;
    chunkSize: number;
    /** Digests new manifests record; sha256 always among them. */
    checksums: ChecksumAlgorithm[];
    slots: SlotsConfig;
    s3: S3StorageConfig;
  };
  http: { listen?: HostPort };
  /** [events]: the outbox and the sinks (docs/spec/events.md). */
  events: EventsSettings;
  /** [defender] */
  defender: DefenderConfig;
  /** [limits] */
  limits: Limits;
  /** [quota], paths absolute. */
  quota: { file: string; usageFile: string };
  /** [snapshots] (docs/spec/snapshots.md). */
  snapshots: { browse: boolean; schedule: 'off' | 'hourly' | 'daily'; keep: { hourly: number; daily: number; weekly: number } };
}

/** [storage] s3.*: the S3 chunk backend (used when backend = s3; endpoint and bucket are then required). */
export interface S3StorageConfig {
  endpoint?: string;
  region: string;
  bucket: string;
  prefix: string;
  addressing: 'path' | 'virtual';
  concurrency: number;
  timeoutSeconds: number;
  retries: number;
  credentialsFile: string;
  cacheDir: string;
  cacheBytes: number;
}

/** [sftpd] users.*, resolved (times in ms, paths absolute): the settings src/users opens a directory with. */
export type UsersConfig = UserDirectorySettings;

/** Where the directory slots live ([storage] slots.*). */
export type SlotsConfig =
  | { backend: 'level' }
  | { backend: 'postgres'; url?: string | undefined; passwordFile: string; schema: string; poolSize: number };

/** Values given on the command line, which win over the file. */
export interface ConfigOverrides {
  sftpListen?: HostPort;
}

/**
 * Validates a parsed document against the schema: every section and key must
 * be known and every value must parse. Missing keys take their defaults.
 * Errors name the line, section and key: `capstan.cfg line 7: [sftpd] listen:
 * expected HOST:PORT, got "abc"`.
 */
export function validateConfig(doc: IniDocument, fileName = CONFIG_FILE): RawConfig {
  for (const section of doc.sections.values()) {
    if (!Object.hasOwn(SCHEMA, section.name)) {
      throw new ConfigError(
        `${fileName} line ${section.line}: unknown section [${section.name}] (known: ${Object.keys(SCHEMA)
          .map((s) => `[${s}]`)
          .join(', ')})`,
      );
    }
    const known = SCHEMA[section.name as SectionName];
    for (const [name, { line }] of section.values) {
      if (!Object.hasOwn(known, name)) {
        throw new ConfigError(`${fileName} line ${line}: [${section.name}] ${name}: unknown key`);
      }
    }
  }
  const raw: Record<string, Record<string, unknown>> = {};
  for (const { section, key, spec } of schemaEntries()) {
    const given = doc.sections.get(section)?.values.get(key);
    const result = spec.type.parse(given?.value ?? spec.default);
    if (!result.ok) {
      const where = given ? `${fileName} line ${given.line}` : `${fileName} (default)`;
      const got = result.echo && given ? `, got ${JSON.stringify(given.value)}` : '';
      throw new ConfigError(`${where}: [${section}] ${key}: expected ${result.expected}${got}`);
    }
    (raw[section] ??= {})[key] = result.value;
  }
  return raw as RawConfig;
}

export function resolveConfig(nodeDir: string, raw: RawConfig, overrides: ConfigOverrides = {}): NodeConfig {
  const inNode = (p: string): string => path.resolve(nodeDir, p);
  const { node, sftpd, storage, http } = raw;
  return {
    nodeDir,
    node: { nickname: node.nickname, logLevel: node.log_level, logFormat: node.log_format, convergence: node.convergence },
    sftpd: {
      enabled: sftpd.enabled,
      listen: overrides.sftpListen ?? sftpd.listen,
      hostKeyFiles: sftpd.host_key_files.map(inNode),
      accountsFile: inNode(sftpd['accounts.file']),
      ...(sftpd['accounts.url'] !== undefined ? { accountsUrl: sftpd['accounts.url'] } : {}),
      accountsUrlCacheTtlSeconds: sftpd['accounts.url.cache_ttl'],
      accountsUrlTimeoutSeconds: sftpd['accounts.url.timeout'],
      ...resolveUsers(sftpd, inNode),
      homesSecretFile: inNode(sftpd['users.homes_secret']),
      idleTimeoutSeconds: sftpd.idle_timeout,
      legacyScp: sftpd.legacy_scp,
      rsaSha1: sftpd.rsa_sha1,
      kexSha1: sftpd.kex_sha1,
      proxyProtocolFrom: sftpd.proxy_protocol,
    },
    storage: {
      backend: storage.backend,
      fsDir: inNode(storage['fs.dir']),
      fsFsync: storage['fs.fsync'],
      slotsDir: inNode(storage['slots.dir']),
      chunkSize: storage.chunk_size,
      // The LocalEGA inbox message carries MD5 beside SHA-256 (docs/spec/events.md): a deployment that swaps its inbox for capstan gets both.
      checksums: raw.events.format === 'localega' && !storage.checksums.includes('md5') ? [...storage.checksums, 'md5'] : storage.checksums,
      s3: resolveS3(storage, inNode),
      slots:
        storage['slots.backend'] === 'postgres'
          ? {
              backend: 'postgres',
              url: storage['slots.postgres.url'],
              passwordFile: inNode(storage['slots.postgres.password_file']),
              schema: storage['slots.postgres.schema'],
              poolSize: storage['slots.postgres.pool_size'],
            }
          : { backend: 'level' },
    },
    http: http.listen !== undefined ? { listen: http.listen } : {},
    defender: resolveDefender(raw.defender, inNode),
    limits: resolveLimits(raw.limits),
    quota: { file: inNode(raw.quota.file), usageFile: inNode(raw.quota.usage_file) },
    snapshots: {
      browse: raw.snapshots.browse,
      schedule: raw.snapshots.schedule,
      keep: { hourly: raw.snapshots.keep_hourly, daily: raw.snapshots.keep_daily, weekly: raw.snapshots.keep_weekly },
    },
    events: resolveEvents(raw.events, inNode),
  };
}

function resolveUsers(sftpd: RawConfig['sftpd'], inNode: (p: string) => string): { users?: UsersConfig } {
  const url = sftpd['users.url'];
  if (url === undefined) return {};
  if (sftpd['accounts.url'] !== undefined) {
    throw new ConfigError(
      `${CONFIG_FILE}: [sftpd] users.url and accounts.url are two ways of asking about users not in the accounts file: set one`,
    );
  }
  if (sftpd['users.format'] === 'aws-transfer' && sftpd['users.aws.server_id'] === '') {
    throw new ConfigError(
      `${CONFIG_FILE}: [sftpd] users.format = aws-transfer needs users.aws.server_id (the {serverId} the identity provider expects)`,
    );
  }
  return {
    users: {
      url,
      format: sftpd['users.format'],
      auth: sftpd['users.auth'],
      credentialsFile: inNode(sftpd['users.credentials']),
      awsServerId: sftpd['users.aws.server_id'],
      awsRegion: sftpd['users.aws.region'],
      timeoutMs: sftpd['users.timeout'] * 1000,
      cacheTtlMs: sftpd['users.cache_ttl'] * 1000,
      negativeTtlMs: sftpd['users.negative_ttl'] * 1000,
      maxLookups: sftpd['users.max_lookups'],
    },
  };
}

function resolveS3(storage: RawConfig['storage'], inNode: (p: string) => string): S3StorageConfig {
  if (storage.backend === 's3' && (storage['s3.endpoint'] === undefined || storage['s3.bucket'] === '')) {
    throw new ConfigError(`${CONFIG_FILE}: [storage] backend = s3 needs s3.endpoint and s3.bucket`);
  }
  return {
    ...(storage['s3.endpoint'] !== undefined ? { endpoint: storage['s3.endpoint'] } : {}),
    region: storage['s3.region'],
    bucket: storage['s3.bucket'],
    prefix: storage['s3.prefix'],
    addressing: storage['s3.addressing'],
    concurrency: storage['s3.concurrency'],
    timeoutSeconds: storage['s3.timeout'],
    retries: storage['s3.retries'],
    credentialsFile: inNode(storage['s3.credentials']),
    cacheDir: inNode(storage['s3.cache.dir']),
    cacheBytes: storage['s3.cache.size'],
  };
}

/** Parses and validates config text (no file system access); for tests and `init`. */
export function parseConfigText(nodeDir: string, text: string, overrides: ConfigOverrides = {}): NodeConfig {
  return resolveConfig(nodeDir, validateConfig(parseIni(text, CONFIG_FILE)), overrides);
}

/**
 * Loads `<nodeDir>/capstan.cfg`. A missing node directory or config file is a
 * ConfigError whose message says what to do about it.
 */
export async function loadConfig(nodeDir: string, overrides: ConfigOverrides = {}): Promise<NodeConfig> {
  const dir = path.resolve(nodeDir);
  const dirStat = await stat(dir).catch(() => undefined);
  if (dirStat === undefined) throw new ConfigError(`node directory ${dir} does not exist (create one with "capstan init -d ${nodeDir}")`);
  if (!dirStat.isDirectory()) throw new ConfigError(`${dir} is not a directory`);
  let text: string;
  try {
    text = await readFile(path.join(dir, CONFIG_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ConfigError(`${dir} is not a capstan node directory (no ${CONFIG_FILE}; create one with "capstan init")`);
    }
    throw new ConfigError(`cannot read ${path.join(dir, CONFIG_FILE)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parseConfigText(dir, text, overrides);
}
