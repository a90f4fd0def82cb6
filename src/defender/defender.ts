import { ConflictError } from '../errors.js';
import type { Logger } from '../log.js';
import { abortable } from '../tree/file/abortable.js';
import { AddressList, clientKey } from './address.js';
import { MemoryDefenderStore } from './memory-store.js';
import { isBanned, scoreFailures, type BanPolicy, type FailureOutcome, type ScoreEvent } from './policy.js';
import { MAX_CLIENT_KEY_LENGTH, type DefenderStore } from './store.js';

/**
 * The brute-force defender: scores failed logins per client address and bans
 * an address whose score reaches a threshold within an observation window
 * (the rules: policy.ts). The SFTP frontend asks `admit` when a connection is
 * accepted and reports failures with `recordFailure`.
 *
 * Where the scores live is a DefenderStore: in memory (the default), in the
 * node directory, or in PostgreSQL shared by every gateway. Each failure is
 * one read and one compare-and-swap of the client's record, so N gateways
 * count against one threshold. Admission never waits for the store: it reads
 * this gateway's copy of the ban list, which holds the bans this gateway
 * decided at once and is re-read from the store every `refreshMs` (only the
 * generation when nothing changed). A ban decided by any gateway therefore
 * refuses the address at every gateway within refreshMs plus one store round
 * trip.
 *
 * When the store fails (database down, slower than storeTimeoutMs), the
 * defender fails open to a local view: the records this gateway last read or
 * wrote, kept in memory, go on being scored and banned here; the ban list it
 * last read stays enforced until those bans end. Nobody is locked out by an
 * outage, nothing throws, and one `defender_store_failed` warning is logged
 * per outage (`defender_store_recovered` when it is back). Failures scored
 * during an outage stay in the local view: they are not merged into the
 * store afterwards.
 *
 * Other rules:
 * - An allow-listed address is never scored, banned or refused; a
 *   deny-listed one is always refused (allow wins over deny).
 * - Each failure adds its kind's score: an unknown user scores more than a
 *   wrong credential for a known one (guessing names is what scanners do; a
 *   real user mistyping a password should not be banned as fast), and a user
 *   name from the refused list (root, admin, …) scores the most.
 * - Memory: the store holds at most maxEntries records (see its sweep); the
 *   ban list and the local view at most maxEntries each.
 *
 * Logs (stable, for tooling): `warn { event: 'ban', remoteAddress, banSeconds,
 * offences }` by the gateway that decided the ban, and `info { event: 'unban',
 * remoteAddress, reason }` by every gateway that enforced it, where reason is
 * `expired`, `operator` (unban() here) or `lifted` (gone from the shared
 * list: unbanned through another gateway or the CLI, or evicted at the bound).
 * `remoteAddress` is the scoring key: an IPv4 address or an IPv6 /64.
 */

export type FailureKind = 'unknown_user' | 'wrong_credential' | 'refused_user';

export interface DefenderOptions extends BanPolicy {
  /** Scoring and bans; the allow and deny lists apply even when off. */
  enabled: boolean;
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
  /** How often start() re-reads the ban list from the store. Default 1000 ms. */
  refreshMs?: number;
  /** How often start() sweeps the store (expiry, bound). Default 60 s. */
  sweepMs?: number;
  /** A store operation slower than this counts as failed: the local view answers. Default 2000 ms. */
  storeTimeoutMs?: number;
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

export const DEFAULT_REFRESH_MS = 1_000;
export const DEFAULT_SWEEP_MS = 60_000;
export const DEFAULT_STORE_TIMEOUT_MS = 2_000;
/**
 * Lost compare-and-swaps on one record before its failures are scored in
 * the local view instead. A gateway has one write per address in flight, so
 * only other gateways can win a race: a few retries suffice.
 */
const MAX_CAS_RETRIES = 16;

export type Admission = { ok: true } | { ok: false; reason: 'denied' | 'banned' };

interface PendingFailure extends ScoreEvent {
  resolve(banned: boolean): void;
}

/** Failures of one key scored in one write at most (a burst beyond it takes several). */
const MAX_BATCH = 256;

interface CachedBan {
  until: number;
  offences: number;
}

/** A map of bans bounded by `max`: past it, the ban ending first is dropped. */
class BanList {
  readonly map = new Map<string, CachedBan>();
  constructor(private readonly max: number) {}
  set(key: string, ban: CachedBan): void {
    this.map.delete(key);
    if (this.map.size >= this.max) {
      let first: string | undefined;
      let firstUntil = Number.POSITIVE_INFINITY;
      for (const [k, b] of this.map) if (b.until < firstUntil) [first, firstUntil] = [k, b.until];
      if (first !== undefined) this.map.delete(first);
    }
    this.map.set(key, ban);
  }
}

export class Defender {
  readonly #opts: DefenderOptions;
  readonly #allow: AddressList;
  readonly #deny: AddressList;
  readonly #refused: ReadonlySet<string>;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #store: DefenderStore;
  /** What this gateway last read or wrote of each client: scored here while the store fails. */
  readonly #local: MemoryDefenderStore;
  /** The store's ban list as last read, plus the bans decided here since. */
  #sharedBans: BanList;
  /** Bans decided in the local view while the store failed: kept until they end. */
  readonly #localBans: BanList;
  #generation: string | undefined;
  #degraded = false;
  /** Keys created in the store since the last sweep: a flood of new addresses triggers one early. */
  #created = 0;
  #refreshing: Promise<void> | undefined;
  #sweeping: Promise<void> | undefined;
  #timers: NodeJS.Timeout[] = [];
  /**
   * Failures waiting per key while that key's previous write is in flight:
   * they go into the next write together, so a burst from one address costs
   * a few statements, not one queue of compare-and-swaps per failure.
   */
  readonly #waiting = new Map<string, PendingFailure[]>();

  /** `store` defaults to a private MemoryDefenderStore (nothing shared, nothing kept across restarts). */
  constructor(opts: DefenderOptions, store?: DefenderStore) {
    if (!(opts.threshold >= 1) || !(opts.maxEntries >= 1)) throw new RangeError('defender threshold and maxEntries must be at least 1');
    this.#opts = opts;
    this.#allow = new AddressList(opts.allow);
    this.#deny = new AddressList(opts.deny);
    this.#refused = new Set(opts.refusedUsers.map((u) => u.toLowerCase()));
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger.child({ component: 'defender' });
    this.#store = store ?? new MemoryDefenderStore({ maxEntries: opts.maxEntries });
    this.#local = new MemoryDefenderStore({ maxEntries: opts.maxEntries });
    this.#sharedBans = new BanList(opts.maxEntries);
    this.#localBans = new BanList(opts.maxEntries);
  }

  /** Reads the ban list once (so bans kept by the store hold from the first connection), then refreshes and sweeps on timers. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timers.push(
      setInterval(() => void this.refresh(), this.#opts.refreshMs ?? DEFAULT_REFRESH_MS).unref(),
      setInterval(() => void this.sweep(), this.#opts.sweepMs ?? DEFAULT_SWEEP_MS).unref(),
    );
  }

  /** Stops the timers and waits for a refresh or sweep in flight. The store is the caller's to close. */
  async close(): Promise<void> {
    for (const t of this.#timers.splice(0)) clearInterval(t);
    await Promise.all([this.#refreshing, this.#sweeping]);
  }

  /** Whether a new connection from this address may proceed. Cheap and synchronous: two list lookups and two map lookups. */
  admit(address: string): Admission {
    if (this.#allow.has(address)) return { ok: true };
    if (this.#deny.has(address)) return { ok: false, reason: 'denied' };
    return this.isBanned(address) ? { ok: false, reason: 'banned' } : { ok: true };
  }

  /** Whether the address is banned, by this gateway's copy of the ban list (never waits for the store). */
  isBanned(address: string): boolean {
    if (!this.#opts.enabled || this.#allow.has(address)) return false;
    return this.#cachedBan(clientKey(address, this.#opts.ipv6Prefix), this.#now()) !== undefined;
  }

  /** Whether a login as `user` is refused without looking the user up. */
  isRefusedUser(user: string): boolean {
    return this.#refused.has(user.toLowerCase());
  }

  /**
   * Scores one failure; resolves with whether the address is banned now (by
   * this failure, or by an earlier one this gateway had not heard of yet).
   * Never rejects: a failing store is replaced by the local view.
   */
  async recordFailure(address: string, kind: FailureKind): Promise<boolean> {
    if (!this.#opts.enabled || this.#allow.has(address)) return false;
    const now = this.#now();
    const key = clientKey(address, this.#opts.ipv6Prefix);
    // Not an IP address (nothing a TCP listener reports): no store keeps it.
    if (key === '' || key.length > MAX_CLIENT_KEY_LENGTH) return false;
    if (this.#cachedBan(key, now) !== undefined) return true; // already out: a banned address is not scored further
    return new Promise<boolean>((resolve) => {
      const failure = { at: now, points: this.#opts.scores[kind], resolve };
      const waiting = this.#waiting.get(key);
      if (waiting !== undefined) {
        waiting.push(failure);
        return;
      }
      const queue = [failure];
      this.#waiting.set(key, queue);
      void this.#drain(key, queue);
    });
  }

  /** Lifts a ban and forgets the address's score (an operator's decision), in the store and here. */
  async unban(address: string): Promise<boolean> {
    const key = clientKey(address, this.#opts.ipv6Prefix);
    if (key === '' || key.length > MAX_CLIENT_KEY_LENGTH) return false;
    const now = this.#now();
    const wasBanned = this.#cachedBan(key, now) !== undefined;
    let stored: boolean;
    const signal = AbortSignal.timeout(this.#opts.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS);
    try {
      const record = await abortable(this.#store.get(key, { signal }), signal);
      stored = isBanned(record?.record, now);
      await abortable(this.#store.delete(key, { signal }), signal);
      this.#storeAnswered();
    } catch (err) {
      this.#storeFailed(err);
      stored = false;
    }
    this.#local.replace(key, undefined);
    this.#sharedBans.map.delete(key);
    this.#localBans.map.delete(key);
    if (!wasBanned && !stored) return false;
    this.#log.info({ event: 'unban', remoteAddress: key, reason: 'operator' }, 'address unbanned');
    return true;
  }

  /** Current bans as this gateway enforces them, for status output and tests. */
  bans(): { address: string; until: Date; offences: number }[] {
    const now = this.#now();
    const all = new Map([...this.#sharedBans.map, ...this.#localBans.map]);
    return [...all].filter(([, b]) => b.until > now).map(([address, b]) => ({ address, until: new Date(b.until), offences: b.offences }));
  }

  /** Whether the last store operation failed (the local view is answering). */
  get degraded(): boolean {
    return this.#degraded;
  }

  /**
   * Re-reads the ban list if the store's generation moved. A failure keeps
   * the list as it was (its bans still end on time) and is logged once per
   * outage. Concurrent calls share one read.
   */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const signal = AbortSignal.timeout(this.#opts.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS);
        const generation = await abortable(this.#store.generation({ signal }), signal);
        if (generation !== this.#generation) {
          const now = this.#now();
          const listed = await abortable(this.#store.bans(now, this.#opts.maxEntries, { signal }), signal);
          const next = new BanList(this.#opts.maxEntries);
          for (const b of listed) next.set(b.key, { until: b.bannedUntil, offences: b.offences });
          for (const [key, old] of this.#sharedBans.map) {
            if (next.map.has(key)) continue;
            if (old.until <= now) this.#logExpired(key);
            else this.#log.info({ event: 'unban', remoteAddress: key, reason: 'lifted' }, 'address ban lifted');
          }
          this.#sharedBans = next;
          this.#generation = generation;
        }
        this.#storeAnswered();
      } catch (err) {
        this.#storeFailed(err);
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** Logs bans that ended, forgets what carries nothing, and keeps the store within maxEntries. Never rejects. */
  sweep(): Promise<void> {
    this.#sweeping ??= (async () => {
      const now = this.#now();
      this.#created = 0;
      for (const list of [this.#sharedBans, this.#localBans]) {
        for (const [key, ban] of list.map) {
          if (ban.until > now) continue;
          list.map.delete(key);
          this.#logExpired(key);
        }
      }
      await this.#local.sweep(now, this.#opts.maxEntries);
      try {
        const signal = AbortSignal.timeout(4 * (this.#opts.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS));
        await abortable(this.#store.sweep(now, this.#opts.maxEntries, { signal }), signal);
        this.#storeAnswered();
      } catch (err) {
        this.#storeFailed(err);
      } finally {
        this.#sweeping = undefined;
      }
    })();
    return this.#sweeping;
  }

  /** Scores `key`'s waiting failures, a batch per write, until none are left. Never rejects. */
  async #drain(key: string, queue: PendingFailure[]): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      const banned = await this.#scoreBatch(key, batch);
      for (const f of batch) f.resolve(banned);
    }
    this.#waiting.delete(key);
  }

  /** One write of `batch`; whether the key is banned after it. */
  async #scoreBatch(key: string, batch: readonly ScoreEvent[]): Promise<boolean> {
    const now = batch.at(-1)?.at ?? this.#now();
    let outcome: FailureOutcome;
    try {
      outcome = await this.#score(this.#store, key, batch, AbortSignal.timeout(this.#opts.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS));
      this.#storeAnswered();
    } catch (err) {
      this.#storeFailed(err);
      outcome = await this.#score(this.#local, key, batch); // a MemoryDefenderStore: cannot fail
      if (isBanned(outcome.record, now)) this.#localBans.set(key, { until: outcome.record.bannedUntil, offences: outcome.record.offences });
      return this.#afterScore(key, outcome, true);
    }
    this.#local.replace(key, outcome.record);
    if (isBanned(outcome.record, now)) this.#sharedBans.set(key, { until: outcome.record.bannedUntil, offences: outcome.record.offences });
    return this.#afterScore(key, outcome, false);
  }

  /**
   * Failures against `store`: read, apply the rules, compare-and-swap;
   * retried when another gateway got there first. Each store call races
   * `signal`, so a store that ignores it still loses.
   */
  async #score(store: DefenderStore, key: string, batch: readonly ScoreEvent[], signal?: AbortSignal): Promise<FailureOutcome> {
    for (let attempt = 0; ; attempt++) {
      const current = await abortable(store.get(key, { signal }), signal);
      const outcome = scoreFailures(current?.record, batch, this.#opts);
      if (outcome.alreadyBanned) return outcome;
      try {
        await abortable(store.put(key, current?.version, outcome.record, { signal }), signal);
        if (current === undefined && store === this.#store) this.#noteCreated();
        return outcome;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= MAX_CAS_RETRIES) throw err;
      }
    }
  }

  #afterScore(key: string, outcome: FailureOutcome, local: boolean): boolean {
    if (outcome.banned) {
      this.#log.warn(
        {
          event: 'ban',
          remoteAddress: key,
          banSeconds: Math.round(outcome.banMs / 1000),
          offences: outcome.record.offences,
          ...(local ? { localOnly: true } : {}),
        },
        'address banned after repeated login failures',
      );
    }
    return outcome.banned || outcome.alreadyBanned;
  }

  /** The ban this gateway enforces on `key` at `now`; an ended one is dropped and logged. */
  #cachedBan(key: string, now: number): CachedBan | undefined {
    let found: CachedBan | undefined;
    for (const list of [this.#sharedBans, this.#localBans]) {
      const ban = list.map.get(key);
      if (ban === undefined) continue;
      if (ban.until > now) found = ban;
      else {
        list.map.delete(key);
        this.#logExpired(key);
      }
    }
    return found;
  }

  #logExpired(key: string): void {
    this.#log.info({ event: 'unban', remoteAddress: key, reason: 'expired' }, 'address ban expired');
  }

  #noteCreated(): void {
    if (++this.#created >= Math.max(16, this.#opts.maxEntries / 16)) void this.sweep();
  }

  #storeFailed(err: unknown): void {
    if (this.#degraded) return;
    this.#degraded = true;
    const e = err as { name?: string; code?: unknown } | null;
    this.#log.warn(
      { event: 'defender_store_failed', err: e?.name ?? 'error', ...(typeof e?.code === 'string' ? { code: e.code } : {}) },
      "defender store unavailable: scoring and bans continue from this gateway's local view",
    );
  }

  #storeAnswered(): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    this.#log.info({ event: 'defender_store_recovered' }, 'defender store answering again');
  }
}
