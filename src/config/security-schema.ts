import { AddressList } from '../defender/address.js';
import { DEFAULT_DEFENDER_OPTIONS, DEFAULT_REFUSED_USERS, type DefenderOptions } from '../defender/defender.js';
import { DEFAULT_LIMITS, type Limits } from '../sftp/limits.js';
import { boolType, formatSize, intType, pathType, sizeType, type ParseResult, type ConfigKey, type ValueType } from './types.js';

/**
 * The [defender] and [limits] sections of capstan.cfg (kept here so the
 * schema file only lists them), and their conversion into the options the
 * defender and the SFTP server take. Defaults come from the code that uses
 * them (DEFAULT_DEFENDER_OPTIONS, DEFAULT_LIMITS), so they cannot drift.
 */

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });

/** Comma-separated IP addresses and CIDRs, IPv4 or IPv6; empty: none. */
export const addressListType: ValueType<string[]> = {
  doc: 'comma-separated IP addresses or CIDRs (empty: none)',
  parse: (raw) => {
    const items = raw === '' ? [] : raw.split(',').map((s) => s.trim());
    try {
      new AddressList(items);
      return ok(items);
    } catch {
      return { ok: false, expected: 'comma-separated IP addresses or CIDRs such as 192.0.2.0/24, 2001:db8::/32', echo: true };
    }
  },
};

/** Comma-separated user names; empty: none. */
export const nameListType: ValueType<string[]> = {
  doc: 'comma-separated user names (empty: none)',
  parse: (raw) => {
    const items = raw === '' ? [] : raw.split(',').map((s) => s.trim());
    return items.every((s) => /^[A-Za-z0-9._@+-]{1,64}$/.test(s))
      ? ok(items)
      : { ok: false, expected: 'comma-separated user names', echo: true };
  },
};

function key<T>(type: ValueType<T>, def: string | number, description: string): ConfigKey<T> {
  return { type, default: String(def), description };
}

const D = DEFAULT_DEFENDER_OPTIONS;
const L = DEFAULT_LIMITS;
const seconds = (ms: number): number => Math.round(ms / 1000);

export const DEFENDER_KEYS = {
  enabled: key(
    boolType,
    'true',
    'Score failed logins per client address and ban addresses that fail too often (see docs/operations.md). The allow and deny lists apply even when off.',
  ),
  threshold: key(intType(1, 100_000), D.threshold, 'Score within observation_time at which an address is banned.'),
  observation_time: key(intType(1, 604_800, 'seconds'), seconds(D.observationMs), 'How long a failure counts towards the threshold.'),
  ban_time: key(intType(1, 31_536_000, 'seconds'), seconds(D.banMs), 'Length of a first ban.'),
  ban_growth: key(
    intType(1, 16),
    D.banGrowth,
    'Each further ban of the same address lasts this many times longer than the previous one, up to max_ban_time.',
  ),
  max_ban_time: key(
    intType(1, 31_536_000, 'seconds'),
    seconds(D.maxBanMs),
    'Longest ban; an address not banned for this long starts again from ban_time.',
  ),
  'score.unknown_user': key(intType(0, 100_000), D.scores.unknown_user, 'Score of a login as a user that has no account.'),
  'score.wrong_credential': key(
    intType(0, 100_000),
    D.scores.wrong_credential,
    'Score of a wrong password or signature for an existing user.',
  ),
  'score.refused_user': key(intType(0, 100_000), D.scores.refused_user, 'Score of a login as a name in refused_users.'),
  failure_delay: key(
    intType(0, 10_000, 'milliseconds'),
    1000,
    'Pause before answering a refused password or signature (other clients are not held up).',
  ),
  max_entries: key(
    intType(100, 10_000_000),
    D.maxEntries,
    'Most client addresses remembered; past it the least recently seen address that is not banned is forgotten.',
  ),
  ipv6_prefix: key(
    intType(32, 128, 'bits'),
    D.ipv6Prefix,
    'IPv6 clients are scored and banned by network of this prefix length (a host usually has a whole /64).',
  ),
  allow: key(addressListType, '', 'Addresses and networks never scored or banned ([limits] still apply).'),
  deny: key(addressListType, '', 'Addresses and networks whose connections are always closed at once (allow wins over deny).'),
  state_dir: key(
    pathType,
    'store/defender',
    'LevelDB directory keeping scores and bans across restarts, relative to the node directory (slots.backend = level; with postgres they live in the slot database, shared by every gateway).',
  ),
  refused_users: key(
    nameListType,
    DEFAULT_REFUSED_USERS.join(','),
    'User names refused at once for any password or key, without looking them up (they score score.refused_user). Case-insensitive.',
  ),
} as const;

export const LIMITS_KEYS = {
  max_connections: key(intType(1, 1_000_000), L.maxConnections, 'Connections open at once, logged in or not; more are closed at accept.'),
  max_connections_per_address: key(
    intType(1, 1_000_000),
    L.maxConnectionsPerAddress,
    'Connections open at once from one client address (IPv6: one /64).',
  ),
  max_sessions_per_account: key(
    intType(1, 1_000_000),
    L.maxSessionsPerAccount,
    'Logged-in connections of one account at once; the login past it is refused.',
  ),
  login_grace_time: key(intType(1, 3600, 'seconds'), seconds(L.loginGraceMs), 'Time a client has to log in after connecting.'),
  max_handles: key(
    intType(1, 65_536),
    L.maxHandles,
    'Open files and directories per SFTP session (announced to clients by limits@openssh.com).',
  ),
  max_pending_requests: key(
    intType(16, 1_000_000),
    L.maxPendingRequests,
    'Requests queued per SFTP session before the gateway stops reading that client until half are answered.',
  ),
  max_pending_bytes: key(
    sizeType(1024 * 1024, 1024 * 1024 * 1024),
    formatSize(L.maxPendingBytes),
    'WRITE data queued per SFTP session before the gateway stops reading that client.',
  ),
  max_output_backlog: key(
    sizeType(256 * 1024, 1024 * 1024 * 1024),
    formatSize(L.maxOutputBacklog),
    'Reply bytes a client has not read yet past which its session starts no further request. Beyond about 510 KiB they are also held in memory_budget.',
  ),
  memory_budget: key(
    sizeType(4 * 1024 * 1024, 64 * 1024 * 1024 * 1024),
    formatSize(L.memoryBudget),
    'Memory for the whole gateway, every session together: queued WRITE data, the chunks uploads seal and store beyond their first one, what downloads fetch ahead, and the replies clients have not read beyond about 510 KiB each (at most half of it). When half is held by the rest the gateway stops reading every client until a quarter is left (docs/operations.md, Memory).',
  ),
  stall_timeout: key(
    intType(1, 86_400, 'seconds'),
    seconds(L.stallTimeoutMs),
    'A client held back by the two limits above whose requests make no progress for this long is disconnected.',
  ),
} as const;

export const QUOTA_KEYS = {
  file: key(
    pathType,
    'private/quotas',
    'Per-account quotas, one line per account: USER bytes=SIZE files=N (see docs/operations.md). Absent: no quotas. Re-read when it changes.',
  ),
  usage_file: key(
    pathType,
    'store/quota-usage.json',
    "Where the gateway keeps each account's counted usage between runs. Not used with slots.backend = postgres: the counters then live in a table beside the slots, shared by every gateway.",
  ),
} as const;

type ValueOf<K> = K extends ConfigKey<infer T> ? T : never;
type Section<S> = { [K in keyof S]: ValueOf<S[K]> };

export type DefenderConfig = Omit<DefenderOptions, 'logger' | 'now'> & { failureDelayMs: number; stateDir: string };

export function resolveDefender(raw: Section<typeof DEFENDER_KEYS>, inNode: (p: string) => string): DefenderConfig {
  return {
    enabled: raw.enabled,
    threshold: raw.threshold,
    observationMs: raw.observation_time * 1000,
    banMs: raw.ban_time * 1000,
    maxBanMs: Math.max(raw.max_ban_time, raw.ban_time) * 1000,
    banGrowth: raw.ban_growth,
    scores: {
      unknown_user: raw['score.unknown_user'],
      wrong_credential: raw['score.wrong_credential'],
      refused_user: raw['score.refused_user'],
    },
    maxEntries: raw.max_entries,
    ipv6Prefix: raw.ipv6_prefix,
    allow: raw.allow,
    deny: raw.deny,
    refusedUsers: raw.refused_users,
    failureDelayMs: raw.failure_delay,
    stateDir: inNode(raw.state_dir),
  };
}

export function resolveLimits(raw: Section<typeof LIMITS_KEYS>): Limits {
  return {
    maxConnections: raw.max_connections,
    maxConnectionsPerAddress: raw.max_connections_per_address,
    maxSessionsPerAccount: raw.max_sessions_per_account,
    loginGraceMs: raw.login_grace_time * 1000,
    maxHandles: raw.max_handles,
    maxPendingRequests: raw.max_pending_requests,
    maxPendingBytes: raw.max_pending_bytes,
    maxOutputBacklog: raw.max_output_backlog,
    memoryBudget: raw.memory_budget,
    stallTimeoutMs: raw.stall_timeout * 1000,
  };
}
