import { parseDirectoryCap } from '../cap/index.js';
import type { Logger } from '../log.js';
import type { HomeSource, Lookup, LookupRequest, UserDirectory, UserRecord } from './directory.js';
import type { JsonClient } from './http-json.js';
import { parseDirectoryKeys } from './keys.js';

/**
 * An AWS Transfer Family custom identity provider, the API Gateway form
 * (AWS Transfer Family User Guide, "Using Amazon API Gateway to integrate
 * your identity provider", and its CloudFormation templates), asked the way
 * Transfer Family asks it:
 *
 * - `GET {url}/servers/{serverId}/users/{username}/config?protocol=SFTP&sourceIp={client address}`
 *   with the password in a `Password` header for a password login and no
 *   such header for a key login. API Gateway's IAM authorization wants a
 *   SigV4 signature (service execute-api) from the caller: `users.auth =
 *   aws-sigv4`. A password that is not plain ASCII goes as its UTF-8 bytes.
 * - 200 with a JSON object; the user is authenticated if and only if `Role`
 *   is a non-blank string (the Lambda answers `{}` to refuse). A 4xx refuses
 *   too, except 401 and 403, which API Gateway answers when its IAM
 *   authorization refuses the caller: those are logged as the provider
 *   refusing capstan's credentials (unavailable), as are 408, 429 and 5xx. Fields:
 *   - `PublicKeys`: array of authorized_keys lines, answered to key lookups
 *     (an empty list is "not a valid login"); not answered to password ones.
 *   - `HomeDirectoryType`: `PATH` (the default) or `LOGICAL`.
 *   - `HomeDirectory` (PATH): the landing directory, e.g. `/bucket/home/jane`.
 *   - `HomeDirectoryDetails` (LOGICAL): a *string* holding a JSON array of
 *     `{ "Entry": "/", "Target": "/bucket/home/jane" }` mappings.
 *   - `Role`, `Policy`, `PosixProfile`: IAM and EFS details capstan has no use for.
 *
 * For capstan the home is named by HomeDirectory (LOGICAL: the Target of the
 * single `/` mapping; several mappings are refused, capstan has no virtual
 * folders): users whose answers name the same HomeDirectory share one
 * auto-created root. A HomeDirectory that is a capstan directory cap (CS1:DIR:…
 * or CS1:DIR-RO:…) is the root itself. Without one, the home is the user name.
 */

export interface AwsTransferOptions {
  /** The API's invoke URL (stage included), e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/prod. */
  url: string;
  /** The `{serverId}` path segment the provider expects (a Transfer server id, s-…). */
  serverId: string;
  client: JsonClient;
  logger: Logger;
}

export class AwsTransferDirectory implements UserDirectory {
  readonly format = 'aws-transfer';
  readonly passwordChecking = true;
  readonly #base: URL;
  readonly #serverId: string;
  readonly #client: JsonClient;
  readonly #log: Logger;

  constructor(options: AwsTransferOptions) {
    this.#base = new URL(options.url);
    this.#serverId = options.serverId;
    this.#client = options.client;
    this.#log = options.logger;
  }

  urlFor(user: string, remoteAddress?: string): URL {
    const url = new URL(this.#base.href);
    const path = `servers/${encodeURIComponent(this.#serverId)}/users/${encodeURIComponent(user)}/config`;
    url.pathname = `${url.pathname.replace(/\/?$/, '/')}${path}`;
    url.search = '';
    url.searchParams.set('protocol', 'SFTP');
    if (remoteAddress !== undefined) url.searchParams.set('sourceIp', remoteAddress.replace(/^::ffff:/, ''));
    return url;
  }

  async lookup(request: LookupRequest): Promise<Lookup> {
    const headers: Record<string, string> = {};
    if (request.password !== undefined) {
      // HTTP header values are bytes; undici writes a string as latin1, so spell the UTF-8 bytes that way. A
      // password with a control character cannot travel in a header at all (nor could it through Transfer Family).
      const value = Buffer.from(request.password, 'utf8').toString('latin1');
      if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) return { kind: 'absent' };
      headers['Password'] = value;
    }
    const answer = await this.#client.get(this.urlFor(request.user, request.remoteAddress), headers, request.signal);
    if (answer.kind === 'failed') return { kind: 'unavailable', reason: answer.reason };
    if (answer.kind === 'status') {
      // 401/403 are what API Gateway answers a caller its IAM authorization refuses: capstan's credentials, not the user.
      if (answer.status === 401 || answer.status === 403) {
        return { kind: 'unavailable', reason: `HTTP ${answer.status}: the identity provider refused capstan's credentials` };
      }
      if (answer.status >= 400 && answer.status < 500 && answer.status !== 408 && answer.status !== 429) return { kind: 'absent' };
      return { kind: 'unavailable', reason: `HTTP ${answer.status}` };
    }
    return this.#record(request, answer.body);
  }

  #record(request: LookupRequest, body: unknown): Lookup {
    const malformed = (what: string): Lookup => ({ kind: 'unavailable', reason: `malformed answer: ${what}` });
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return malformed('not a JSON object');
    const o = body as Record<string, unknown>;
    if (o['Role'] !== undefined && typeof o['Role'] !== 'string') return malformed('Role is not a string');
    if (typeof o['Role'] !== 'string' || o['Role'].trim() === '') return { kind: 'absent' };
    const home = this.#home(request.user, o);
    if (typeof home === 'string') return malformed(home);
    const record: UserRecord = { user: request.user, keys: [], home };
    if (request.password !== undefined) {
      record.passwordAccepted = true;
      return { kind: 'found', record };
    }
    const lines = o['PublicKeys'];
    if (lines !== undefined && !Array.isArray(lines)) return malformed('PublicKeys is not an array');
    const { keys, refused } = parseDirectoryKeys(lines ?? []);
    record.keys = keys;
    for (const r of refused) {
      this.#log.warn(
        { event: 'directory_key_refused', user: request.user, key: r.index, reason: r.reason },
        'identity provider gave a public key capstan does not accept',
      );
    }
    return { kind: 'found', record };
  }

  /** The home an answer names, or a loggable fault. */
  #home(user: string, o: Record<string, unknown>): HomeSource | string {
    const type = o['HomeDirectoryType'] ?? 'PATH';
    let name: unknown;
    if (type === 'PATH') name = o['HomeDirectory'];
    else if (type === 'LOGICAL') {
      const details = o['HomeDirectoryDetails'];
      if (typeof details !== 'string') return 'LOGICAL without a HomeDirectoryDetails string';
      let mappings: unknown;
      try {
        mappings = JSON.parse(details);
      } catch {
        return 'HomeDirectoryDetails is not JSON';
      }
      if (!Array.isArray(mappings) || mappings.length !== 1)
        return 'HomeDirectoryDetails must hold exactly one mapping (capstan has no virtual folders)';
      const only = mappings[0] as { Entry?: unknown; Target?: unknown } | null;
      if (only === null || typeof only !== 'object' || only.Entry !== '/' || typeof only.Target !== 'string') {
        return 'HomeDirectoryDetails must map Entry "/" to a Target';
      }
      name = only.Target;
    } else return 'HomeDirectoryType is neither PATH nor LOGICAL';
    if (name === undefined || name === null || name === '') return { kind: 'home', name: user };
    if (typeof name !== 'string' || name.length > 1024) return 'HomeDirectory is not a string of at most 1024 characters';
    if (name.startsWith('CS1:')) {
      try {
        return { kind: 'cap', cap: parseDirectoryCap(name).toString() };
      } catch {
        return 'HomeDirectory looks like a cap but is not a directory cap';
      }
    }
    return { kind: 'home', name };
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
