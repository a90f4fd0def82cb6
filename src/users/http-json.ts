import { Agent, request } from 'undici';
import type { S3CredentialSource } from '../store/s3/credentials.js';
import { signRequest, sha256Hex } from '../store/s3/sigv4.js';

/**
 * One bounded GET of a JSON document from a user directory: a whole-request
 * deadline, a cap on the body, the directory's credentials for capstan
 * (none, HTTP basic, a bearer token, or an AWS SigV4 signature for API
 * Gateway's IAM authorization), and never a throw: every outcome is a value
 * whose `reason` is safe to log (it never quotes the body, which may hold a
 * hash, nor a header, which may hold a password).
 */

export type DirectoryAuth =
  | { kind: 'none' }
  | { kind: 'basic'; user: string; password: string }
  | { kind: 'bearer'; token: string }
  /** Asked before every request, so temporary credentials from the AWS chain are used as they refresh. */
  | { kind: 'aws-sigv4'; credentials: S3CredentialSource; region: string };

export type JsonAnswer =
  | { kind: 'json'; status: number; body: unknown }
  | { kind: 'status'; status: number }
  | { kind: 'failed'; reason: string };

export interface JsonClientOptions {
  auth: DirectoryAuth;
  timeoutMs: number;
  /** A user record is a few KiB at most (a handful of keys). */
  maxBodyBytes?: number;
  /** Keep-alive connections kept to the directory. */
  connections?: number;
}

export class JsonClient {
  readonly #agent: Agent;
  readonly #auth: DirectoryAuth;
  readonly #timeoutMs: number;
  readonly #maxBodyBytes: number;

  constructor(options: JsonClientOptions) {
    this.#auth = options.auth;
    this.#timeoutMs = options.timeoutMs;
    this.#maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
    this.#agent = new Agent({
      connections: options.connections ?? 16,
      keepAliveTimeout: 30_000,
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  /** GET `url` with `headers` (plus auth and accept). */
  async get(url: URL, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<JsonAnswer> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const all: Record<string, string> = { accept: 'application/json', ...headers, ...(await this.#authHeaders(url)) };
    try {
      const { statusCode, body } = await request(url, {
        method: 'GET',
        headers: all,
        dispatcher: this.#agent,
        signal: signal !== undefined ? AbortSignal.any([signal, deadline]) : deadline,
      });
      // destroy() of an undici body emits 'error'; with no listener that would crash the gateway.
      body.on('error', () => undefined);
      if (statusCode !== 200) {
        body.destroy();
        return { kind: 'status', status: statusCode };
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.#maxBodyBytes) {
          body.destroy();
          return { kind: 'failed', reason: `answer larger than ${this.#maxBodyBytes} bytes` };
        }
        chunks.push(chunk);
      }
      try {
        return { kind: 'json', status: statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
      } catch {
        return { kind: 'failed', reason: `answer is not JSON (${size} bytes)` };
      }
    } catch (err) {
      if (signal?.aborted === true) return { kind: 'failed', reason: 'login ended before the answer' };
      if (deadline.aborted) return { kind: 'failed', reason: `no answer within ${this.#timeoutMs} ms` };
      const e = err as { code?: string; name?: string };
      return { kind: 'failed', reason: `unreachable (${e.code ?? e.name ?? 'error'})` };
    }
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => undefined);
  }

  async #authHeaders(url: URL): Promise<Record<string, string>> {
    const auth = this.#auth;
    switch (auth.kind) {
      case 'none':
        return {};
      case 'basic':
        return { authorization: `Basic ${Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64')}` };
      case 'bearer':
        return { authorization: `Bearer ${auth.token}` };
      case 'aws-sigv4': {
        // Signed: host and the x-amz headers; other headers (Password) travel unsigned, as SigV4 allows. For
        // services other than S3 the canonical path is the path as sent (already percent-encoded), encoded again.
        const signed = signRequest(
          {
            method: 'GET',
            host: url.host,
            path: url.pathname,
            query: [...url.searchParams.entries()],
            payloadHash: sha256Hex(''),
          },
          await auth.credentials(),
          auth.region,
          new Date(),
          'execute-api',
        );
        const { host: _host, ...rest } = signed.headers;
        return rest;
      }
    }
  }
}
