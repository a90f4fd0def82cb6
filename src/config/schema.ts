import { SCHEMA_NAME_RE } from '../store/slots/postgres/migrations.js';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../tree/index.js';
import { EVENTS_KEYS } from './events-schema.js';
import { addressListType, DEFENDER_KEYS, LIMITS_KEYS, QUOTA_KEYS } from './security-schema.js';
import { USERS_KEYS } from './users-schema.js';
import {
  boolType,
  enumType,
  formatSize,
  hostPortType,
  intType,
  optionalLoopbackHostPortType,
  optionalUrlOf,
  optionalUrlType,
  pathListType,
  pathType,
  sizeType,
  stringType,
  type ConfigKey,
  type ValueType,
} from './types.js';

export type { ConfigKey } from './types.js';

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

function key<T>(type: ValueType<T>, def: string, description: string): ConfigKey<T> {
  return { type, default: def, description };
}

/** Empty (libpq's PG* environment variables decide) or a postgres:// URL. */
const optionalPostgresUrlType = optionalUrlOf(
  ['postgres', 'postgresql'],
  'empty or postgres:// URL',
  'empty or a postgres:// or postgresql:// URL',
);

/** An SQL schema name capstan can use without quoting surprises. */
const postgresSchemaType: ValueType<string> = {
  doc: 'SQL identifier (a-z, 0-9, _)',
  parse: (raw) =>
    SCHEMA_NAME_RE.test(raw)
      ? { ok: true, value: raw }
      : { ok: false, expected: '1 to 63 of a-z, 0-9 and _, not starting with a digit', echo: true },
};

export const SLOT_BACKENDS = ['level', 'postgres'] as const;

export const CHUNK_BACKENDS = ['fs', 's3'] as const;
export const S3_ADDRESSING = ['path', 'virtual'] as const;
/** [storage] checksums: comma-separated, each known once, sha256 among them. */
const checksumListType: ValueType<ChecksumAlgorithm[]> = {
  doc: 'comma-separated subset of sha256, md5, sha1 (sha256 required)',
  parse: (raw) => {
    const items = raw.split(',').map((s) => s.trim());
    const known = items.every((s) => (CHECKSUM_ALGORITHMS as readonly string[]).includes(s));
    if (!known || new Set(items).size !== items.length || !items.includes('sha256')) {
      return { ok: false, expected: 'a comma-separated list of sha256, md5, sha1 that includes sha256', echo: true };
    }
    return { ok: true, value: items as ChecksumAlgorithm[] };
  },
};

/** 1 TiB: sizeType counts bytes in a plain number. */
const MAX_S3_CACHE_BYTES = 1024 * 1024 * 1024 * 1024;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['auto', 'json', 'text'] as const;
export const CONVERGENCE_MODES = ['per-account', 'per-gateway'] as const;

export const SCHEMA = {
  node: {
    nickname: key(stringType, '', 'A name for this node, shown by `capstan status` and in logs.'),
    log_level: key(enumType(LOG_LEVELS), 'info', 'Least severe level of the log lines written to stdout.'),
    log_format: key(
      enumType(LOG_FORMATS),
      'auto',
      'How log lines are written to stdout: json (one JSON object a line, for log shippers, jq and fail2ban), text (short human-readable lines), or auto: text when stdout is a terminal, json otherwise.',
    ),
    convergence: key(
      enumType(CONVERGENCE_MODES),
      'per-account',
      'Convergence domain for file encryption keys: identical files deduplicate only within one account (per-account), or across all accounts (per-gateway, which lets every user confirm whether any other user stores a given file).',
    ),
  },
  sftpd: {
    enabled: key(boolType, 'true', 'Run the SFTP server. When false, `capstan run` serves only the slot socket and the HTTP listener.'),
    listen: key(
      hostPortType,
      '127.0.0.1:8022',
      'Address the SFTP server listens on. Use 0.0.0.0:PORT or [::]:PORT to accept remote clients.',
    ),
    host_key_files: key(
      pathListType,
      'private/ssh_host_ed25519_key,private/ssh_host_rsa_key',
      'OpenSSH private host keys, relative to the node directory. Gateways behind one load balancer should share the same files.',
    ),
    'accounts.file': key(
      pathType,
      'private/accounts',
      'The accounts file (users, their keys or password hashes, their root caps). Reloaded when it changes.',
    ),
    'accounts.url': key(
      optionalUrlType,
      '',
      'Account server asked about password logins of users not in the accounts file (Tahoe-LAFS contract, see docs/operations.md). Empty: off.',
    ),
    'accounts.url.cache_ttl': key(intType(0, 86_400, 'seconds'), '3600', 'How long an account server answer is cached.'),
    'accounts.url.timeout': key(intType(1, 300, 'seconds'), '10', 'Timeout of one account server request.'),
    /** A central user directory: src/config/users-schema.ts. */
    ...USERS_KEYS,
    idle_timeout: key(
      intType(0, 604_800, 'seconds'),
      '900',
      'Close a connection after this long with no SFTP request and nothing else from the client (an SSH keepalive counts: an sshfs mount with `-o ServerAliveInterval=15` stays; one without is closed, and sshfs exits). Checked at least once a minute. 0: never.',
    ),
    rsa_sha1: key(
      boolType,
      'false',
      "Accept RSA user-key signatures over SHA-1 (`ssh-rsa`). Clients too old to sign with SHA-2 send only these: JSch 0.1.55 (Jenkins, Ant), paramiko before 2.9 (Ubuntu 20.04, Debian 11), PuTTY before 0.75, OpenSSH before 7.2. Refused by default, as OpenSSH's sshd has since 8.8 (SHA-1 collisions can be computed); such a client then fails with a key that is listed, and the log says `reason: 'RSA signature over SHA-1'`. Ed25519 and ECDSA keys, and passwords, are not affected.",
    ),
    kex_sha1: key(
      boolType,
      'false',
      "Offer the key exchange diffie-hellman-group14-sha1, for clients with nothing newer the gateway can do: phpseclib 1.0 (Debian 12's php-seclib), whose only other methods are group exchange, which the gateway does not implement. Off by default, as OpenSSH's sshd has it (its exchange hash is SHA-1); such a client is then refused during the key exchange, and the log line `handshake_failed` names this key.",
    ),
    legacy_scp: key(
      boolType,
      'true',
      "Serve legacy scp (`scp -O`, and OpenSSH's scp before 9.0, the default of RHEL 8 and Ubuntu 20.04): no shell and no scp binary run; the gateway parses the command and runs each file operation as an SFTP request of the same session, with the same checks (read-only, append-only, quotas, events). False: legacy scp is refused with a line naming the SFTP mode of the client's release.",
    ),
    proxy_protocol: key(
      addressListType,
      '',
      'Load balancers (addresses or CIDRs) whose connections start with a PROXY protocol header, v1 or v2 (HAProxy send-proxy, send-proxy-v2): the client address in it is what bans, limits and logs see. A connection from these addresses without a valid header is closed. Empty: off.',
    ),
  },
  storage: {
    backend: key(
      enumType(CHUNK_BACKENDS),
      'fs',
      'Where chunks live: fs (a local directory, fs.*) or s3 (an S3 bucket, s3.*; see docs/operations.md).',
    ),
    'fs.dir': key(
      pathType,
      'store/chunks',
      'Directory of the fs chunk store, relative to the node directory; with LevelDB slots (the embedded default) its packs/ holds every new object (docs/spec/packs.md).',
    ),
    'fs.fsync': key(
      boolType,
      'true',
      'Make every commit durable before it is acknowledged (the embedded default: one fdatasync of the journal per batch of commits; otherwise each chunk file). Off is faster and can lose recent uploads in a power cut.',
    ),
    's3.endpoint': key(
      optionalUrlType,
      '',
      'S3 service URL (backend = s3), e.g. https://s3.eu-west-1.amazonaws.com or http://minio.internal:9000. Required with backend = s3.',
    ),
    's3.region': key(stringType, 'us-east-1', 'Region the S3 requests are signed for (SigV4).'),
    's3.bucket': key(stringType, '', 'Bucket holding the chunks (it must exist). Required with backend = s3.'),
    's3.prefix': key(
      stringType,
      '',
      'Prepended to every object key, e.g. capstan/ to share a bucket; objects are <prefix>packs/<id>.pack (before storage engine v3: <prefix>chunks/<a>/<b>/<cid>).',
    ),
    's3.addressing': key(
      enumType(S3_ADDRESSING),
      'path',
      'path: ENDPOINT/BUCKET/KEY (MinIO, Ceph, Swift); virtual: BUCKET.ENDPOINT-HOST/KEY (AWS).',
    ),
    's3.concurrency': key(intType(1, 256), '8', 'S3 requests in flight at once per process, and keep-alive connections kept for them.'),
    's3.timeout': key(intType(1, 600, 'seconds'), '30', 'Timeout of one S3 request attempt (connect, send, answer).'),
    's3.retries': key(
      intType(0, 20),
      '4',
      'Retries of an S3 request after a 5xx, 429, reset or timeout (exponential backoff, full jitter); other 4xx are never retried.',
    ),
    's3.credentials': key(
      pathType,
      'private/s3-credentials',
      'File with a static access key id and secret (two lines, or INI like ~/.aws/credentials). When it exists it is used and nothing else; when it does not, the standard AWS credential chain: environment, ~/.aws files with AWS_PROFILE, web identity token, container and instance metadata (docs/operations.md).',
    ),
    's3.cache.dir': key(pathType, 'store/s3-cache', 'Local read cache of chunks fetched from S3, relative to the node directory.'),
    's3.cache.size': key(
      sizeType(0, MAX_S3_CACHE_BYTES),
      '1024MiB',
      'Bound on the read cache; least recently used chunks are evicted past it. 0: no cache.',
    ),
    'slots.backend': key(
      enumType(SLOT_BACKENDS),
      'level',
      'Where directory slots live: level (a LevelDB database in slots.dir, one gateway per node) or postgres (a PostgreSQL database several gateways can share, see docs/operations.md).',
    ),
    'slots.dir': key(
      pathType,
      'store/slots',
      'LevelDB directory holding the directory slots, relative to the node directory (slots.backend = level).',
    ),
    'slots.postgres.url': key(
      optionalPostgresUrlType,
      '',
      'PostgreSQL to keep the slots in (slots.backend = postgres), e.g. postgres://capstan@db.example:5432/capstan?sslmode=require. Empty: the PGHOST, PGPORT, PGDATABASE and PGUSER environment variables, as for psql.',
    ),
    'slots.postgres.password_file': key(
      pathType,
      'private/postgres-password',
      'File holding the PostgreSQL password (first line), used when the URL has none and the file exists; else PGPASSWORD or ~/.pgpass. Relative to the node directory.',
    ),
    'slots.postgres.schema': key(
      postgresSchemaType,
      'public',
      "SQL schema of capstan's tables; capstan creates and migrates it. Gateways sharing slots use the same database and schema.",
    ),
    'slots.postgres.pool_size': key(
      intType(1, 100),
      '10',
      'Connections each process keeps to PostgreSQL at most (the bound on concurrent slot statements).',
    ),
    chunk_size: key(
      sizeType(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
      formatSize(DEFAULT_CHUNK_SIZE),
      "Plaintext bytes per chunk of an immutable file (the default is the tree layer's). Changing it affects only new uploads, which then no longer deduplicate with identical old ones.",
    ),
    checksums: key(
      checksumListType,
      'sha256',
      "Whole-file digests recorded in each new file's manifest while it is uploaded, and carried by upload events. SHA-256 always; MD5 and SHA-1 cost CPU on every upload (measured on a 2-core EPYC, node:crypto over 1 MiB pieces: SHA-256 0.67, SHA-1 0.66, MD5 1.62 CPU-seconds per GiB), so the default records SHA-256 only ([events] format = localega adds MD5, which the LocalEGA inbox message carries). An unrecorded digest is computed on demand by reading the file (`md5sum`/`sha1sum` over exec, check-file) and is absent from events. Changing it affects only new uploads: their manifests (and caps) differ from those of identical old files, their chunks are still shared.",
    ),
  },
  http: {
    listen: key(
      optionalLoopbackHostPortType,
      '',
      'Loopback address of the HTTP listener serving /healthz and /metrics. Empty: off. Unauthenticated, hence loopback only.',
    ),
  },
  /** Brute-force defence: src/config/security-schema.ts. */
  defender: DEFENDER_KEYS,
  /** Connection and request limits: src/config/security-schema.ts. */
  limits: LIMITS_KEYS,
  /** Per-account quotas: src/config/security-schema.ts. */
  quota: QUOTA_KEYS,
  events: EVENTS_KEYS,
  snapshots: {
    browse: key(
      boolType,
      'true',
      'Serve a read-only /.snapshots/ folder in every writable account root: the snapshots of the root, by UTC time (docs/operations.md, Snapshots). Hidden from the root listing. Not for an account with the no-snapshots option (accounts file).',
    ),
    schedule: key(
      enumType(['off', 'hourly', 'daily'] as const),
      'off',
      'Take a snapshot of every account root (accounts file, write caps) at the start of every hour or day, UTC. With several gateways on one slot store, one of them takes each period.',
    ),
    keep_hourly: key(intType(0, 100_000), '24', 'Scheduled snapshots kept: the newest of each of the last N hours.'),
    keep_daily: key(intType(0, 100_000), '14', 'Scheduled snapshots kept: the newest of each of the last N UTC days.'),
    keep_weekly: key(
      intType(0, 100_000),
      '8',
      'Scheduled snapshots kept: the newest of each of the last N weeks (Monday to Sunday, UTC). A snapshot any rule keeps stays; manual ones are never removed by the schedule.',
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
