import { parseCryptHash } from '../auth/crypt-hash.js';
import type { Logger } from '../log.js';
import type { Lookup, LookupRequest, UserDirectory, UserRecord } from './directory.js';
import type { JsonClient } from './http-json.js';
import { parseDirectoryKeys } from './keys.js';

/**
 * The LocalEGA inbox contract (EGA-archive/EGA-auth, src/cega.c and
 * src/json.c; the test CentralEGA users server in EGA-archive/LocalEGA,
 * deploy/docker/cega/server/users.py), as the inbox asks:
 *
 * - `GET` the configured endpoint with the user name in place of `%s`
 *   (`cega_endpoint_username = https://cega/username/%s`), or appended as a
 *   last path segment when the URL has no `%s`; HTTP basic authentication
 *   with the gateway's own credentials (`cega_creds = user:password`).
 * - 200 with a JSON object:
 *
 *       { "username": "john", "uid": 15001,
 *         "passwordHash": "$2b$12$…",            (or null)
 *         "sshPublicKeys": ["ssh-ed25519 AAAA… john@host"],
 *         "gecos": "…", "lastChanged": 19430 }
 *
 *   EGA-auth refuses a record without `username`, without both
 *   `passwordHash` and `sshPublicKeys`, or with `uid` ≤ 0, and one whose
 *   `username` is not the name asked for; so does capstan. `gecos` and
 *   `lastChanged` are not used. Other fields are ignored.
 * - Any other status: EGA-auth (curl with FAILONERROR) treats it as "not
 *   found". capstan tells 404 and 410 (no such user: absent, cached for the
 *   negative TTL) from the rest (401/403: the directory refused capstan's
 *   credentials; 5xx and the like: unavailable), so an outage or a wrong
 *   gateway password is logged as such and not taken for unknown users.
 *
 * The home is the user name: each user gets a root of their own.
 */

export interface LocalEgaOptions {
  /** `users.url`: an http(s) URL, with `%s` where the name goes or without (then it is appended). */
  url: string;
  client: JsonClient;
  logger: Logger;
}

export class LocalEgaDirectory implements UserDirectory {
  readonly format = 'localega';
  readonly passwordChecking = false;
  readonly #url: string;
  readonly #client: JsonClient;
  readonly #log: Logger;

  constructor(options: LocalEgaOptions) {
    this.#url = options.url;
    this.#client = options.client;
    this.#log = options.logger;
  }

  /** The URL for `user` (a name already checked against USER_NAME_RE: every character is legal in a path segment). */
  urlFor(user: string): URL {
    if (this.#url.includes('%s')) return new URL(this.#url.replace('%s', user));
    const base = new URL(this.#url);
    base.pathname = `${base.pathname.replace(/\/?$/, '/')}${user}`;
    return base;
  }

  async lookup(request: LookupRequest): Promise<Lookup> {
    const answer = await this.#client.get(this.urlFor(request.user), {}, request.signal);
    if (answer.kind === 'failed') return { kind: 'unavailable', reason: answer.reason };
    if (answer.kind === 'status') {
      if (answer.status === 404 || answer.status === 410) return { kind: 'absent' };
      if (answer.status === 401 || answer.status === 403) {
        return { kind: 'unavailable', reason: `HTTP ${answer.status}: the user directory refused capstan's credentials` };
      }
      return { kind: 'unavailable', reason: `HTTP ${answer.status}` };
    }
    return this.#record(request.user, answer.body);
  }

  #record(user: string, body: unknown): Lookup {
    const malformed = (what: string): Lookup => ({ kind: 'unavailable', reason: `malformed answer: ${what}` });
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return malformed('not a JSON object');
    const o = body as Record<string, unknown>;
    if (typeof o['username'] !== 'string') return malformed('no username');
    if (o['username'] !== user) return malformed('username is not the name asked for');
    if (typeof o['uid'] !== 'number' || !Number.isSafeInteger(o['uid']) || o['uid'] <= 0) return malformed('no positive integer uid');
    const hashText = o['passwordHash'];
    const keyLines = o['sshPublicKeys'];
    if (hashText !== undefined && hashText !== null && typeof hashText !== 'string') return malformed('passwordHash is not a string');
    if (keyLines !== undefined && keyLines !== null && !Array.isArray(keyLines)) return malformed('sshPublicKeys is not an array');
    const hasHash = typeof hashText === 'string' && hashText !== '';
    const hasKeys = Array.isArray(keyLines) && keyLines.length > 0;
    if (!hasHash && !hasKeys) return malformed('neither passwordHash nor sshPublicKeys');

    const record: UserRecord = { user, keys: [], home: { kind: 'home', name: user } };
    if (hasKeys) {
      const { keys, refused } = parseDirectoryKeys(keyLines as unknown[]);
      record.keys = keys;
      for (const r of refused) {
        this.#log.warn(
          { event: 'directory_key_refused', user, key: r.index, reason: r.reason },
          'user directory gave a public key capstan does not accept',
        );
      }
    }
    if (hasHash) {
      const parsed = parseCryptHash(hashText);
      if (parsed.ok) record.passwordHash = parsed.hash;
      else {
        this.#log.warn(
          { event: 'directory_hash_refused', user, format: parsed.format, reason: parsed.reason },
          'user directory gave a password hash capstan does not accept; password logins refused for this user',
        );
      }
    }
    return { kind: 'found', record };
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
