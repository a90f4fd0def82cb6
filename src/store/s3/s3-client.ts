import { Pool, type Dispatcher } from 'undici';
import { AbortError, TransientError } from '../../errors.js';
import { withRetry, type RetryPolicy } from './retry.js';
import { Semaphore } from './semaphore.js';
import type { S3CredentialSource } from './credentials.js';
import { canonicalQuery, EMPTY_SHA256, sha256Hex, signRequest, type S3Credentials } from './sigv4.js';
import { errorCode } from './xml.js';

export type S3Addressing = 'path' | 'virtual';

export interface S3ClientOptions {
  /** http(s)://host[:port] of the S3 service (no bucket in it). */
  endpoint: string;
  region: string;
  bucket: string;
  /** path: endpoint/bucket/key (MinIO, Swift, Ceph); virtual: bucket.endpoint/key (AWS). */
  addressing: S3Addressing;
  /** Fixed keys, or a source asked before each request is signed (temporary credentials that refresh). */
  credentials: S3Credentials | S3CredentialSource;
  /** Requests in flight at once, and the connections kept alive for them. */
  concurrency: number;
  /** Whole-request timeout (connect, send, headers, body), ms. */
  timeoutMs: number;
  retry: RetryPolicy;
}

export interface S3Request {
  method: 'GET' | 'PUT' | 'HEAD' | 'DELETE';
  /** Object key, decoded; undefined addresses the bucket itself. */
  key?: string;
  query?: [string, string][];
  body?: Uint8Array;
  /** Hex sha256 of body; computed if absent. */
  payloadHash?: string;
  headers?: Record<string, string>;
  /** Longest response body accepted; a longer one fails the request with `tooLarge()`. */
  maxBodyBytes: number;
  tooLarge?: () => Error;
  signal?: AbortSignal;
}

export interface S3Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

/**
 * A 4xx answer that is neither "not found" nor "slow down": the request, the
 * bucket or the credentials are wrong, and asking again will not help. It is
 * deliberately not one of capstan's domain errors: it means the operator's
 * S3 configuration needs fixing, and it is logged as such.
 */
export class S3ResponseError extends Error {
  constructor(
    readonly status: number,
    readonly s3Code: string | undefined,
    operation: string,
  ) {
    super(`S3 ${operation} failed: HTTP ${status}${s3Code ? ` ${s3Code}` : ''}`);
    this.name = 'S3ResponseError';
  }
}

/**
 * Error codes meaning the session token is no longer good: the source is asked
 * for fresh credentials and the request retried (clock skew between the
 * credential service and S3 can make a token expire before its stated time).
 */
const EXPIRED_TOKEN_CODES = new Set(['ExpiredToken', 'TokenRefreshRequired']);

/** Error bodies are read only this far (they are small XML documents). */
const MAX_ERROR_BODY = 16 * 1024;
/** undici/node error codes of a connection that broke or never came up: worth retrying. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * Signed S3 requests over one keep-alive undici Pool, with a semaphore
 * bounding requests in flight (`concurrency`), a timeout on every attempt and
 * retries (withRetry) on what may clear up: 5xx, 429, resets, timeouts.
 * Retrying here, per HTTP request, rather than in a store wrapper, is what
 * lets a listing retry one page instead of starting over, and keeps the
 * status-code classification next to the code that sees the status. A
 * waiting retry does not hold a concurrency slot.
 */
export class S3Client {
  private readonly pool: Pool;
  private readonly semaphore: Semaphore;
  /** Host header (and signed host) of every request: the endpoint's, or bucket.endpoint's for virtual addressing. */
  readonly host: string;
  /** Path before the key: `/bucket` (path addressing) or empty (virtual), after any path in the endpoint. */
  readonly basePath: string;

  constructor(private readonly options: S3ClientOptions) {
    const url = new URL(options.endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError('S3 endpoint must be http(s)');
    if (options.addressing === 'virtual') url.hostname = `${options.bucket}.${url.hostname}`;
    this.host = url.host;
    // An endpoint may carry a path prefix (some gateways mount S3 under one).
    const prefix = url.pathname.replace(/\/+$/, '');
    this.basePath = options.addressing === 'path' ? `${prefix}/${options.bucket}` : prefix;
    this.pool = new Pool(url.origin, {
      connections: options.concurrency,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: { timeout: Math.min(options.timeoutMs, 10_000) },
    });
    this.semaphore = new Semaphore(options.concurrency);
  }

  /** Requests in flight right now (for tests of the bound). */
  get inFlight(): number {
    return this.semaphore.inUse;
  }

  /** Sends `request`, retrying transient failures; any other status is returned for the caller to judge. */
  async send(request: S3Request): Promise<S3Response> {
    return withRetry(() => this.attempt(request), this.options.retry, request.signal);
  }

  /** Throws S3ResponseError for `response` (call for a status the caller did not expect). */
  fail(response: S3Response, operation: string): never {
    const text = Buffer.from(response.body.subarray(0, MAX_ERROR_BODY)).toString('utf8');
    throw new S3ResponseError(response.status, errorCode(text), operation);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private async attempt(request: S3Request): Promise<S3Response> {
    const { signal } = request;
    const release = await this.semaphore.acquire(signal);
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const path = request.key === undefined ? `${this.basePath}/` : `${this.basePath}/${request.key}`;
      const { credentials } = this.options;
      const signed = signRequest(
        {
          method: request.method,
          host: this.host,
          path,
          ...(request.query ? { query: request.query } : {}),
          headers: request.headers ?? {},
          payloadHash: request.payloadHash ?? (request.body ? sha256Hex(request.body) : EMPTY_SHA256),
        },
        typeof credentials === 'function' ? await credentials() : credentials,
        this.options.region,
        new Date(),
      );
      const query = canonicalQuery(request.query);
      const { host: _host, ...headers } = signed.headers;
      const res = await this.pool.request({
        method: request.method,
        path: encodePath(path) + (query ? `?${query}` : ''),
        headers,
        ...(request.body ? { body: request.body } : {}),
        signal: combined,
      });
      const failed = res.statusCode >= 500 || res.statusCode === 429;
      // An error answer's body is only ever looked at for its <Code>: keep its
      // first bytes and drop the rest, rather than failing on a long one.
      const errorAnswer = failed || res.statusCode >= 300;
      const body =
        request.method === 'HEAD'
          ? new Uint8Array(0)
          : errorAnswer
            ? await readBody(res, MAX_ERROR_BODY, 'truncate')
            : await readBody(res, request.maxBodyBytes, request.tooLarge);
      if (request.method === 'HEAD') await res.body.dump();
      if (failed) throw new TransientError(`S3 ${request.method} answered HTTP ${res.statusCode}`);
      if ((res.statusCode === 400 || res.statusCode === 403) && typeof credentials === 'function') {
        const code = errorCode(Buffer.from(body).toString('utf8'));
        if (code !== undefined && EXPIRED_TOKEN_CODES.has(code)) {
          await credentials({ forceRefresh: true });
          throw new TransientError(`S3 ${request.method}: ${code}; credentials refreshed`);
        }
      }
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      if (signal?.aborted) throw new AbortError();
      if (timeout.aborted) throw new TransientError(`S3 ${request.method} timed out after ${this.options.timeoutMs} ms`, { cause: err });
      throw classifyNetworkError(err, request.method);
    } finally {
      release();
    }
  }
}

/** The request path as sent: the same encoding SigV4 signs (RFC 3986, `/` kept). */
function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()))
    .join('/');
}

function classifyNetworkError(err: unknown, method: string): unknown {
  const code = (err as { code?: string } | null)?.code;
  if (code !== undefined && TRANSIENT_NETWORK_CODES.has(code)) {
    return new TransientError(`S3 ${method} connection failed (${code})`, { cause: err });
  }
  return err;
}

/** Reads the body whole, refusing more than `max` bytes (dropping the connection rather than draining it). */
async function readBody(res: Dispatcher.ResponseData, max: number, tooLarge?: (() => Error) | 'truncate'): Promise<Uint8Array> {
  // destroy() makes undici emit an abort error on the body; nobody else listens to it.
  res.body.on('error', () => undefined);
  const declared = Number(res.headers['content-length']);
  if (tooLarge !== 'truncate' && Number.isSafeInteger(declared) && declared > max) {
    res.body.destroy();
    throw typeof tooLarge === 'function' ? tooLarge() : new TransientError(`S3 response of ${declared} bytes exceeds ${max}`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const part of res.body as AsyncIterable<Buffer>) {
    if (tooLarge === 'truncate' && total + part.length > max) {
      parts.push(part.subarray(0, max - total));
      total = max;
      res.body.destroy();
      break;
    }
    total += part.length;
    if (total > max) {
      res.body.destroy();
      throw typeof tooLarge === 'function' ? tooLarge() : new TransientError(`S3 response exceeds ${max} bytes`);
    }
    parts.push(part);
  }
  // A fresh array the caller owns: socket buffers may be views of shared slabs.
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
