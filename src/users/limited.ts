import type { Lookup, LookupRequest, UserDirectory } from './directory.js';

/**
 * A user directory with a bound on lookups in flight, so no burst of logins
 * (a flood of made-up names from many addresses, say) turns into more than
 * `maxInFlight` concurrent requests to the user database. Past the bound a
 * lookup is answered `unavailable` at once (load shedding: the login is
 * refused, unscored, and the client may retry), not queued.
 *
 * Lookups for the same user (and, for a password-checking directory, the
 * same password) already in flight are joined, not repeated: a client that
 * offers three keys one after another, or several connections of one user
 * starting together, cost one request. A request is never cancelled by one
 * caller going away (others may wait on it); each caller stops waiting when
 * its own signal aborts, and the request itself ends within the client's
 * timeout.
 */
export class LimitedUserDirectory implements UserDirectory {
  readonly format;
  readonly passwordChecking;
  readonly maxInFlight: number;
  readonly #inner: UserDirectory;
  readonly #inFlight = new Map<string, Promise<Lookup>>();
  /** The most requests that were in flight at once since start (for tests and metrics). */
  peak = 0;

  constructor(inner: UserDirectory, maxInFlight: number) {
    this.#inner = inner;
    this.format = inner.format;
    this.passwordChecking = inner.passwordChecking;
    this.maxInFlight = maxInFlight;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async lookup(request: LookupRequest): Promise<Lookup> {
    const key = this.passwordChecking && request.password !== undefined ? `${request.user}\0${request.password}` : request.user;
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      if (this.#inFlight.size >= this.maxInFlight) {
        return { kind: 'unavailable', reason: `${this.maxInFlight} lookups already in flight` };
      }
      const { signal: _ignored, ...shared } = request;
      pending = this.#inner
        .lookup(shared)
        .catch((): Lookup => ({ kind: 'unavailable', reason: 'lookup failed' }))
        .finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
      this.peak = Math.max(this.peak, this.#inFlight.size);
    }
    const signal = request.signal;
    if (signal === undefined) return pending;
    if (signal.aborted) return { kind: 'unavailable', reason: 'login ended before the answer' };
    return new Promise<Lookup>((resolve) => {
      const onAbort = (): void => resolve({ kind: 'unavailable', reason: 'login ended before the answer' });
      signal.addEventListener('abort', onAbort, { once: true });
      void pending.then((answer) => {
        signal.removeEventListener('abort', onAbort);
        resolve(answer);
      });
    });
  }

  async close(): Promise<void> {
    await this.#inner.close();
  }
}
