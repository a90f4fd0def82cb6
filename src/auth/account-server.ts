import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Agent, FormData, request } from 'undici';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../log.js';
import { defaultValidateCap, isValidUserName, type CapValidator } from './account-line.js';

/**
 * Client for an account server (`accounts.url`), Tahoe-LAFS's contract:
 * POST multipart/form-data with `action=authenticate`, `email=USER`,
 * `passwd=PASSWORD`; the response body (whitespace trimmed) is the user's
 * root cap, or `0` for "no".
 *
 * It never throws: a refusal, a timeout, a connection error, a non-2xx status,
 * an oversized body or a body that is neither `0` nor a valid cap all deny the
 * login and (except a plain `0`) log a warning. Successes are cached for a
 * TTL so a busy user does not cost a round trip per connection; failures are
 * never cached, so a user who just fixed a password is not kept out.
 */
export interface AccountServerOptions {
  url: string;
  logger: Logger;
  validateCap?: CapValidator | undefined;
  /** Whole-request deadline: connect, headers and body. */
  timeoutMs?: number;
  cacheTtlMs?: number;
  maxCacheEntries?: number;
  /** A root cap is well under 1 KiB; anything much larger is not an answer. */
  maxResponseBytes?: number;
  /** Keep-alive connections to the server. */
  maxConnections?: number;
  /** Requests in flight at once; more are denied rather than queued without bound. */
  maxInFlight?: number;
  /** Clock, for tests of the TTL. */
  now?: () => number;
}

interface CacheEntry {
  /** HMAC of user and password under the per-process key: the password itself is never kept. */
  tag: Buffer;
  rootCap: string;
  expiresAt: number;
}

export class AccountServerClient {
  private readonly url: URL;
  private readonly logger: Logger;
  private readonly validateCap: CapValidator;
  private readonly timeoutMs: number;
  private readonly cacheTtlMs: number;
  private readonly maxCacheEntries: number;
  private readonly maxResponseBytes: number;
  private readonly maxInFlight: number;
  private readonly now: () => number;
  private readonly agent: Agent;
  /** Per-process random key for cache tags, so a memory dump of the cache is not an offline password oracle across restarts. */
  private readonly cacheKey = randomBytes(32);
  /** One entry per user: a fresh success replaces the previous one, so an old password stops hitting once the new one is used. */
  private readonly cache = new Map<string, CacheEntry>();
  private inFlight = 0;

  constructor(opts: AccountServerOptions) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new InvalidInputError('accounts.url is not a URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError('accounts.url must be http: or https:');
    this.url = url;
    this.logger = opts.logger.child({ component: 'account-server', server: url.host });
    this.validateCap = opts.validateCap ?? defaultValidateCap;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.cacheTtlMs = opts.cacheTtlMs ?? 3_600_000;
    this.maxCacheEntries = opts.maxCacheEntries ?? 10_000;
    this.maxResponseBytes = opts.maxResponseBytes ?? 4096;
    this.maxInFlight = opts.maxInFlight ?? 64;
    this.now = opts.now ?? Date.now;
    this.agent = new Agent({
      connections: opts.maxConnections ?? 8,
      keepAliveTimeout: 30_000,
      connect: { timeout: this.timeoutMs },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  /** The user's root cap, or null for any kind of "no". Never throws. */
  async authenticate(user: string, password: string): Promise<string | null> {
    if (!isValidUserName(user) || typeof password !== 'string') return null;
    const tag = createHmac('sha256', this.cacheKey).update(user).update('\0').update(password).digest();
    const cached = this.cache.get(user);
    if (cached !== undefined) {
      if (cached.expiresAt <= this.now()) this.cache.delete(user);
      else if (timingSafeEqual(cached.tag, tag)) return cached.rootCap;
    }
    if (this.inFlight >= this.maxInFlight) {
      this.logger.warn({ user, inFlight: this.inFlight }, 'account server: too many requests in flight; login denied');
      return null;
    }
    this.inFlight++;
    let rootCap: string | null;
    try {
      rootCap = await this.ask(user, password);
    } finally {
      this.inFlight--;
    }
    if (rootCap !== null) this.remember(user, { tag, rootCap, expiresAt: this.now() + this.cacheTtlMs });
    return rootCap;
  }

  /** Entries held now (expired ones linger until touched or pushed out). */
  get cacheSize(): number {
    return this.cache.size;
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.agent.close().catch(() => undefined);
  }

  private remember(user: string, entry: CacheEntry): void {
    this.cache.delete(user);
    while (this.cache.size >= this.maxCacheEntries) {
      const oldest = this.cache.keys().next();
      if (oldest.done === true) break;
      this.cache.delete(oldest.value);
    }
    this.cache.set(user, entry);
  }

  private async ask(user: string, password: string): Promise<string | null> {
    const form = new FormData();
    form.append('action', 'authenticate');
    form.append('email', user);
    form.append('passwd', password);
    const started = Date.now();
    try {
      const { statusCode, body } = await request(this.url, {
        method: 'POST',
        body: form,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: { accept: 'text/plain' },
      });
      // destroy() of an undici body emits 'error' (UND_ERR_ABORTED); with no
      // listener that is an uncaught exception, i.e. a crashed gateway.
      body.on('error', () => undefined);
      if (statusCode < 200 || statusCode > 299) {
        body.destroy();
        this.logger.warn({ user, status: statusCode }, `account server answered HTTP ${statusCode}; login denied`);
        return null;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.maxResponseBytes) {
          body.destroy();
          this.logger.warn({ user, limit: this.maxResponseBytes }, 'account server response too large; login denied');
          return null;
        }
        chunks.push(chunk);
      }
      const answer = Buffer.concat(chunks).toString('utf8').trim();
      if (answer === '0') {
        this.logger.info({ user }, 'account server refused the login');
        return null;
      }
      if (!this.validateCap(answer)) {
        // Never log the body: it may be a cap in a format we do not accept.
        this.logger.warn({ user, bytes: size }, 'account server response is neither 0 nor a valid root cap; login denied');
        return null;
      }
      return answer;
    } catch (err) {
      const e = err as { code?: string; name?: string };
      this.logger.warn(
        { user, err: e.code ?? e.name ?? 'error', ms: Date.now() - started },
        'account server unreachable or too slow; login denied',
      );
      return null;
    }
  }
}
