import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify as bcryptVerify } from '@node-rs/bcrypt';
import { verify as shaCryptVerify } from 'unixcrypt';
import { signRequest, sha256Hex, type S3Credentials } from '../../src/store/s3/sigv4.js';

/**
 * The two user directories capstan talks to, as small HTTP servers on
 * loopback implementing each contract as documented (there is no real
 * CentralEGA or AWS here): the peers of test/integration/user-directories.
 *
 * - CegaUsersServer: the CentralEGA users endpoint of EGA-archive/LocalEGA's
 *   test server (deploy/docker/cega/server): GET /username/{name} and
 *   /user-id/{uid} behind HTTP basic auth, a JSON record or 404.
 * - AwsIdentityProvider: an AWS Transfer Family custom identity provider in
 *   its API Gateway form: GET /{stage}/servers/{serverId}/users/{username}/config
 *   ?protocol=SFTP&sourceIp=…, IAM (SigV4, execute-api) authorization, the
 *   password in a Password header checked against a salted hash (bcrypt or
 *   sha512-crypt, as the operators' Lambda + DynamoDB keep them), `{}` to
 *   refuse.
 *
 * Both count requests and the most in flight at once, can answer slowly,
 * answer garbage, or stop listening (every connection cut) and start again
 * on the same port. Each test stops the servers it started in afterAll.
 */

abstract class TestHttpServer {
  #server: Server | undefined;
  port = 0;
  /** Paths asked for, in order. */
  readonly requests: string[] = [];
  inFlight = 0;
  peak = 0;
  /** Added before every answer. */
  delayMs = 0;
  /** ok: as the contract says; garbage: not JSON; malformed: JSON the contract does not allow; error: HTTP 500. */
  mode: 'ok' | 'garbage' | 'malformed' | 'error' = 'ok';

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => void this.#serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
    return this;
  }

  /** Stops listening and cuts every connection (keep-alive ones included): the database is down. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  resetCounters(): void {
    this.requests.length = 0;
    this.peak = this.inFlight;
  }

  protected abstract answer(req: IncomingMessage, url: URL): Promise<{ status: number; body?: unknown }>;

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      const url = new URL(req.url ?? '/', this.url);
      this.requests.push(url.pathname);
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.mode === 'error') return void res.writeHead(500).end('internal error');
      if (this.mode === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('<html>oops');
      if (this.mode === 'malformed') return void res.writeHead(200, { 'content-type': 'application/json' }).end('["not","an","object"]');
      const { status, body } = await this.answer(req, url);
      if (status !== 200) return void res.writeHead(status).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    } catch {
      if (!res.headersSent) res.writeHead(500).end();
    } finally {
      this.inFlight--;
    }
  }
}

export interface CegaRecord {
  username: string;
  uid: number;
  passwordHash?: string | null;
  sshPublicKeys?: string[];
  gecos?: string;
  lastChanged?: number;
}

export class CegaUsersServer extends TestHttpServer {
  readonly users = new Map<string, CegaRecord>();

  constructor(readonly credentials: { user: string; password: string }) {
    super();
  }

  protected async answer(req: IncomingMessage, url: URL): Promise<{ status: number; body?: unknown }> {
    const expected = `Basic ${Buffer.from(`${this.credentials.user}:${this.credentials.password}`).toString('base64')}`;
    if (req.headers.authorization !== expected) return { status: 401 };
    const byName = /^\/username\/([^/]+)$/.exec(url.pathname);
    const byUid = /^\/user-id\/([0-9]+)$/.exec(url.pathname);
    let record: CegaRecord | undefined;
    if (byName) record = this.users.get(decodeURIComponent(byName[1]!));
    else if (byUid) record = [...this.users.values()].find((u) => u.uid === Number(byUid[1]));
    return record === undefined ? { status: 404 } : { status: 200, body: record };
  }
}

export interface AwsUser {
  /** bcrypt ($2b$) or sha512-crypt ($6$), checked against the Password header. */
  passwordHash?: string;
  publicKeys?: string[];
  homeDirectory?: string;
  homeDirectoryType?: 'PATH' | 'LOGICAL';
  homeDirectoryDetails?: string;
}

export class AwsIdentityProvider extends TestHttpServer {
  readonly users = new Map<string, AwsUser>();
  readonly stage = 'prod';
  /** Every query string seen (protocol, sourceIp), for the contract checks. */
  readonly queries: URLSearchParams[] = [];
  /** Password headers seen (how many, not what). */
  passwordHeaders = 0;

  constructor(
    readonly serverId: string,
    readonly credentials: S3Credentials & { region: string },
  ) {
    super();
  }

  get invokeUrl(): string {
    return `${this.url}/${this.stage}`;
  }

  protected async answer(req: IncomingMessage, url: URL): Promise<{ status: number; body?: unknown }> {
    if (!this.#signedByUs(req, url)) return { status: 403 };
    const m = new RegExp(`^/${this.stage}/servers/([^/]+)/users/([^/]+)/config$`).exec(url.pathname);
    if (m === null) return { status: 404 };
    if (decodeURIComponent(m[1]!) !== this.serverId) return { status: 404 };
    this.queries.push(url.searchParams);
    const user = this.users.get(decodeURIComponent(m[2]!));
    const password = req.headers['password'];
    if (password !== undefined) this.passwordHeaders++;
    if (user === undefined) return { status: 200, body: {} };
    const answer: Record<string, unknown> = { Role: 'arn:aws:iam::000000000000:role/capstan-test', Policy: '' };
    if (user.homeDirectoryType !== undefined) answer['HomeDirectoryType'] = user.homeDirectoryType;
    if (user.homeDirectory !== undefined) answer['HomeDirectory'] = user.homeDirectory;
    if (user.homeDirectoryDetails !== undefined) answer['HomeDirectoryDetails'] = user.homeDirectoryDetails;
    if (typeof password === 'string') {
      const given = Buffer.from(password, 'latin1').toString('utf8');
      const hash = user.passwordHash;
      const ok = hash === undefined ? false : hash.startsWith('$2') ? await bcryptVerify(given, hash) : shaCryptVerify(given, hash);
      return { status: 200, body: ok ? answer : {} };
    }
    answer['PublicKeys'] = user.publicKeys ?? [];
    return { status: 200, body: answer };
  }

  /** API Gateway's IAM authorization, as far as a test can check it: a SigV4 signature for execute-api with our key. */
  #signedByUs(req: IncomingMessage, url: URL): boolean {
    const authorization = req.headers.authorization;
    const date = req.headers['x-amz-date'];
    if (typeof authorization !== 'string' || typeof date !== 'string') return false;
    const when = new Date(
      `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
    );
    const expected = signRequest(
      {
        method: req.method ?? 'GET',
        host: req.headers.host ?? '',
        path: url.pathname,
        query: [...url.searchParams.entries()],
        payloadHash: sha256Hex(''),
      },
      this.credentials,
      this.credentials.region,
      when,
      'execute-api',
    );
    return expected.headers['authorization'] === authorization;
  }
}
