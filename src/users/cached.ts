import { createHmac, randomBytes } from 'node:crypto';
import type { Lookup, LookupRequest, UserDirectory } from './directory.js';

/**
 * A user directory behind a TTL cache, as the LocalEGA inbox keeps one
 * (`cache_ttl`, an hour, wiped on restart): a user found is not asked about
 * again until `ttlMs` has passed, so a changed key or password takes effect
 * after at most that long; an absent user or a failed lookup is remembered
 * for `negativeTtlMs` only (0: not at all), so a flood of one made-up name,
 * or of logins during an outage, costs one request per negative TTL, and a
 * user just added (or a directory just back) waits at most that long.
 *
 * Bounds: at most `maxEntries` answers (the oldest is dropped first); the
 * cache lives in memory only, so a restart clears it. For a directory that
 * checks passwords itself, an answer to a password lookup is filed under a
 * keyed hash of user and password (a per-process random key: a memory dump
 * is no password oracle across restarts); never the password.
 */
export interface CacheOptions {
  ttlMs: number;
  negativeTtlMs: number;
  maxEntries?: number;
  /** The clock, for tests. */
  now?: () => number;
}

interface Entry {
  answer: Lookup;
  expiresAt: number;
}

export type Knowledge = 'known' | 'unknown' | 'unavailable' | undefined;

export class CachedUserDirectory implements UserDirectory {
  readonly format;
  readonly passwordChecking;
  readonly #inner: UserDirectory;
  readonly #ttlMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #tagKey = randomBytes(32);
  readonly #entries = new Map<string, Entry>();
  /** The last outcome of any lookup of each user (password lookups of a password-checking directory included), for knowledge(). */
  readonly #last = new Map<string, { kind: Lookup['kind']; expiresAt: number }>();

  constructor(inner: UserDirectory, options: CacheOptions) {
    this.#inner = inner;
    this.format = inner.format;
    this.passwordChecking = inner.passwordChecking;
    this.#ttlMs = options.ttlMs;
    this.#negativeTtlMs = options.negativeTtlMs;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  async lookup(request: LookupRequest): Promise<Lookup> {
    const key = this.#key(request);
    const cached = this.#fresh(key);
    if (cached !== undefined) return cached;
    const answer = await this.#inner.lookup(request);
    // A lookup cut short by its own connection ending says nothing about the user.
    if (request.signal?.aborted === true) return answer;
    const ttl = answer.kind === 'found' ? this.#ttlMs : this.#negativeTtlMs;
    if (ttl > 0) this.#remember(this.#entries, key, { answer, expiresAt: this.#now() + ttl });
    this.#remember(this.#last, request.user, { kind: answer.kind, expiresAt: this.#now() + Math.max(ttl, 60_000) });
    return answer;
  }

  /**
   * What the cache holds about `user` (its key lookup): found, absent, failed
   * (all within their TTLs), or nothing. For scoring a refused login after
   * the fact; never asks the directory.
   */
  knowledge(user: string): Knowledge {
    let kind: Lookup['kind'] | undefined = this.#fresh(user)?.kind;
    if (kind === undefined) {
      const last = this.#last.get(user);
      if (last !== undefined && last.expiresAt > this.#now()) kind = last.kind;
    }
    if (kind === undefined) return undefined;
    return kind === 'found' ? 'known' : kind === 'absent' ? 'unknown' : 'unavailable';
  }

  /** Answers held now (expired ones linger until touched or pushed out). */
  get size(): number {
    return this.#entries.size;
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#last.clear();
    await this.#inner.close();
  }

  #key(request: LookupRequest): string {
    if (!this.passwordChecking || request.password === undefined) return request.user;
    const tag = createHmac('sha256', this.#tagKey).update(request.user).update('\0').update(request.password).digest('base64');
    return `${request.user}\0${tag}`;
  }

  #fresh(key: string): Lookup | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.#now()) return entry.answer;
    this.#entries.delete(key);
    return undefined;
  }

  #remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    while (map.size >= this.#maxEntries) {
      const oldest = map.keys().next();
      if (oldest.done === true) break;
      map.delete(oldest.value);
    }
    map.set(key, value);
  }
}
