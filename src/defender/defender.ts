import type { Logger } from '../log.js';
import { AddressList, clientKey } from './address.js';

/**
 * The brute-force defender: scores failed logins per client address and bans
 * an address whose score reaches a threshold within an observation window.
 * Pure logic (no sockets, no ssh2): the SFTP frontend asks `admit` when a
 * connection is accepted and reports failures with `recordFailure`.
 *
 * Rules:
 * - An allow-listed address is never scored, banned or refused; a
 *   deny-listed one is always refused (allow wins over deny).
 * - Each failure adds its kind's score: an unknown user scores more than a
 *   wrong credential for a known one (guessing names is what scanners do; a
 *   real user mistyping a password should not be banned as fast), and a user
 *   name from the refused list (root, admin, …) scores the most.
 * - Scores older than the observation window no longer count. Reaching the
 *   threshold bans the address for banMs × growth^(earlier bans), at most
 *   maxBanMs; the count of earlier bans is forgotten once an address has
 *   been quiet (not banned) for maxBanMs.
 * - Memory: at most maxEntries addresses. At the limit, addresses with
 *   nothing left to remember go first, then the least recently seen address
 *   that is not banned, then (only if every entry is banned) the oldest ban.
 *   Each entry holds at most `threshold` score events (every score is ≥ 1).
 *
 * Logs (stable, for tooling): `warn { event: 'ban', remoteAddress, banSeconds,
 * offences }` and `info { event: 'unban', remoteAddress, reason }` where
 * reason is `expired` (noticed at the next look or sweep) or `operator`.
 * `remoteAddress` is the scoring key: an IPv4 address or an IPv6 /64.
 */

export type FailureKind = 'unknown_user' | 'wrong_credential' | 'refused_user';

export interface DefenderOptions {
  /** Scoring and bans; the allow and deny lists apply even when off. */
  enabled: boolean;
  threshold: number;
  observationMs: number;
  banMs: number;
  maxBanMs: number;
  /** Factor applied to the ban time per earlier ban. */
  banGrowth: number;
  scores: Readonly<Record<FailureKind, number>>;
  maxEntries: number;
  /** Bits of an IPv6 address that name one client (64: a /64 is one client). */
  ipv6Prefix: number;
  allow: readonly string[];
  deny: readonly string[];
  /** User names refused at once (compared case-insensitively). */
  refusedUsers: readonly string[];
  logger: Logger;
  now?: () => number;
}

export const DEFAULT_REFUSED_USERS: readonly string[] = [
  'root',
  'admin',
  'administrator',
  'test',
  'user',
  'ubuntu',
  'centos',
  'ec2-user',
  'oracle',
  'postgres',
  'mysql',
  'ftp',
  'guest',
  'support',
];

export const DEFAULT_DEFENDER_OPTIONS = {
  enabled: true,
  threshold: 15,
  observationMs: 30 * 60_000,
  banMs: 30 * 60_000,
  maxBanMs: 24 * 3600_000,
  banGrowth: 2,
  scores: { unknown_user: 2, wrong_credential: 1, refused_user: 3 },
  maxEntries: 10_000,
  ipv6Prefix: 64,
  allow: [] as string[],
  deny: [] as string[],
  refusedUsers: DEFAULT_REFUSED_USERS,
} satisfies Omit<DefenderOptions, 'logger' | 'now'>;

export type Admission = { ok: true } | { ok: false; reason: 'denied' | 'banned' };

interface Entry {
  /** Score events inside the observation window, oldest first. */
  events: { at: number; points: number }[];
  bannedUntil: number;
  /** Bans so far (drives the ban growth). */
  offences: number;
  lastBanEnd: number;
}

export class Defender {
  readonly #opts: DefenderOptions;
  readonly #allow: AddressList;
  readonly #deny: AddressList;
  readonly #refused: ReadonlySet<string>;
  readonly #now: () => number;
  readonly #log: Logger;
  /** Insertion order = recency: an entry is re-inserted whenever it is touched. */
  readonly #entries = new Map<string, Entry>();

  constructor(opts: DefenderOptions) {
    if (!(opts.threshold >= 1) || !(opts.maxEntries >= 1)) throw new RangeError('defender threshold and maxEntries must be at least 1');
    this.#opts = opts;
    this.#allow = new AddressList(opts.allow);
    this.#deny = new AddressList(opts.deny);
    this.#refused = new Set(opts.refusedUsers.map((u) => u.toLowerCase()));
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger.child({ component: 'defender' });
  }

  /** Addresses remembered now (bounded by maxEntries). */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether a new connection from this address may proceed. Cheap: one list lookup and one map lookup. */
  admit(address: string): Admission {
    if (this.#allow.has(address)) return { ok: true };
    if (this.#deny.has(address)) return { ok: false, reason: 'denied' };
    return this.isBanned(address) ? { ok: false, reason: 'banned' } : { ok: true };
  }

  isBanned(address: string): boolean {
    if (!this.#opts.enabled || this.#allow.has(address)) return false;
    const key = clientKey(address, this.#opts.ipv6Prefix);
    const entry = this.#entries.get(key);
    return entry !== undefined && this.#stillBanned(key, entry, this.#now());
  }

  /** Whether a login as `user` is refused without looking the user up. */
  isRefusedUser(user: string): boolean {
    return this.#refused.has(user.toLowerCase());
  }

  /** Scores one failure; returns true if it banned the address. */
  recordFailure(address: string, kind: FailureKind): boolean {
    if (!this.#opts.enabled || this.#allow.has(address)) return false;
    const now = this.#now();
    const key = clientKey(address, this.#opts.ipv6Prefix);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      this.#makeRoom(now);
      entry = { events: [], bannedUntil: 0, offences: 0, lastBanEnd: 0 };
    } else {
      this.#entries.delete(key);
    }
    this.#entries.set(key, entry);
    if (this.#stillBanned(key, entry, now)) return false; // already out; a banned address is not scored further
    this.#prune(entry, now);
    entry.events.push({ at: now, points: this.#opts.scores[kind] });
    const score = entry.events.reduce((sum, e) => sum + e.points, 0);
    if (score < this.#opts.threshold) return false;
    this.#ban(key, entry, now);
    return true;
  }

  /** Lifts a ban and forgets the address's score (an operator's decision). */
  unban(address: string): boolean {
    const key = clientKey(address, this.#opts.ipv6Prefix);
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#entries.delete(key);
    if (entry.bannedUntil > this.#now()) {
      this.#log.info({ event: 'unban', remoteAddress: key, reason: 'operator' }, 'address unbanned');
      return true;
    }
    return false;
  }

  /** Current bans, for status output and tests. */
  bans(): { address: string; until: Date; offences: number }[] {
    const now = this.#now();
    return [...this.#entries]
      .filter(([, e]) => e.bannedUntil > now)
      .map(([address, e]) => ({ address, until: new Date(e.bannedUntil), offences: e.offences }));
  }

  /** Logs expired bans and forgets addresses with nothing left to remember. Call now and then. */
  sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#entries) {
      this.#stillBanned(key, entry, now);
      if (this.#forgettable(entry, now)) this.#entries.delete(key);
    }
  }

  #stillBanned(key: string, entry: Entry, now: number): boolean {
    if (entry.bannedUntil === 0) return false;
    if (entry.bannedUntil > now) return true;
    entry.lastBanEnd = entry.bannedUntil;
    entry.bannedUntil = 0;
    this.#log.info({ event: 'unban', remoteAddress: key, reason: 'expired' }, 'address ban expired');
    return false;
  }

  #ban(key: string, entry: Entry, now: number): void {
    const { banMs, maxBanMs, banGrowth } = this.#opts;
    if (entry.lastBanEnd !== 0 && now - entry.lastBanEnd > maxBanMs) entry.offences = 0;
    const ms = Math.min(maxBanMs, banMs * banGrowth ** entry.offences);
    entry.offences++;
    entry.bannedUntil = now + ms;
    entry.events = [];
    this.#log.warn(
      { event: 'ban', remoteAddress: key, banSeconds: Math.round(ms / 1000), offences: entry.offences },
      'address banned after repeated login failures',
    );
  }

  #prune(entry: Entry, now: number): void {
    const from = now - this.#opts.observationMs;
    let drop = 0;
    while (drop < entry.events.length && entry.events[drop]!.at <= from) drop++;
    if (drop > 0) entry.events.splice(0, drop);
  }

  #forgettable(entry: Entry, now: number): boolean {
    if (entry.bannedUntil > now) return false;
    const lastEvent = entry.events.at(-1)?.at ?? 0;
    const scoreGone = now - lastEvent >= this.#opts.observationMs;
    const offencesGone = entry.offences === 0 || now - entry.lastBanEnd > this.#opts.maxBanMs;
    return scoreGone && offencesGone;
  }

  #makeRoom(now: number): void {
    if (this.#entries.size < this.#opts.maxEntries) return;
    this.sweep();
    if (this.#entries.size < this.#opts.maxEntries) return;
    for (const [key, entry] of this.#entries) {
      if (entry.bannedUntil <= now) {
        this.#entries.delete(key);
        return;
      }
    }
    // Every remembered address is banned: the oldest ban goes (the table must stay bounded).
    const oldest = this.#entries.keys().next();
    if (oldest.done !== true) this.#entries.delete(oldest.value);
  }
}
