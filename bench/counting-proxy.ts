import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy on loopback in front of the S3 endpoint (the local Swift)
 * that counts every request by method: the exact number of PUTs a gateway
 * sends, whatever its chunk store does inside (packs, retries, HEAD before
 * PUT), which a wrapper around the chunk store could not see.
 *
 * It forwards each request unchanged, Host header included: a SigV4
 * signature covers the Host the client signed (this proxy's address), and
 * Swift's s3api checks it against the Host it receives, so the signature
 * holds. Bodies stream through in both directions (memory stays bounded by
 * the sockets' buffers). Only hop-by-hop headers are dropped. It costs some
 * CPU on the benchmark's side of the machine: the S3 MB/s are taken through
 * it too.
 */

/** Requests by HTTP method (PUT, GET, HEAD, ...). */
export type RequestCounts = Record<string, number>;

/** Connection-level headers (RFC 9110 7.6.1): they describe one hop, not the request. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
]);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name.toLowerCase())));
}

export class CountingProxy {
  readonly #server: Server;
  readonly #agent: Agent;
  readonly #counts: RequestCounts = {};
  /** Answers by HTTP status, and 'failed' for exchanges the upstream broke: what a failed run reports. */
  readonly #answers: Record<string, number> = {};
  readonly endpoint: string;

  private constructor(server: Server, agent: Agent, endpoint: string) {
    this.#server = server;
    this.#agent = agent;
    this.endpoint = endpoint;
  }

  /** Starts a proxy on 127.0.0.1 (a free port) in front of `upstream` (http://127.0.0.1:PORT). */
  static async start(upstream: string): Promise<CountingProxy> {
    const target = new URL(upstream);
    if (target.protocol !== 'http:') throw new Error(`counting proxy: only http upstreams (got ${target.protocol})`);
    const agent = new Agent({ keepAlive: true });
    let proxy: CountingProxy | undefined;
    const server = createServer((req, res) => {
      const method = req.method ?? 'UNKNOWN';
      if (proxy) proxy.#counts[method] = (proxy.#counts[method] ?? 0) + 1;
      const forward = request(
        { host: target.hostname, port: target.port, method, path: req.url, headers: endToEnd(req.headers), agent },
        (upstreamRes) => {
          if (proxy) proxy.#answered(String(upstreamRes.statusCode ?? 502));
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, endToEnd(upstreamRes.headers));
          upstreamRes.pipe(res);
          upstreamRes.once('error', () => res.destroy());
        },
      );
      // Either side failing ends the other: the client sees a broken exchange, as it would without the proxy.
      forward.once('error', () => {
        if (proxy) proxy.#answered('failed');
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      });
      req.once('error', () => forward.destroy());
      res.once('close', () => {
        if (!res.writableFinished) forward.destroy();
      });
      req.pipe(forward);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    proxy = new CountingProxy(server, agent, `http://127.0.0.1:${port}`);
    return proxy;
  }

  /** A copy of the counts so far, by method. */
  counts(): RequestCounts {
    return { ...this.#counts };
  }

  /** A copy of the answers so far, by status ('failed': the upstream broke the exchange). */
  answers(): Record<string, number> {
    return { ...this.#answers };
  }

  #answered(status: string): void {
    this.#answers[status] = (this.#answers[status] ?? 0) + 1;
  }

  /** Stops listening and closes every connection, idle or not. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }
}

/** Requests counted between two snapshots, by method (methods with none left out). */
export function countsBetween(before: RequestCounts, after: RequestCounts): RequestCounts {
  const out: RequestCounts = {};
  for (const [method, n] of Object.entries(after)) {
    const d = n - (before[method] ?? 0);
    if (d > 0) out[method] = d;
  }
  return out;
}

/** "PUT 5.00, GET 0.10" (requests per file, by method), or "none". */
export function perFile(counts: RequestCounts, files: number): string {
  const parts = Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([method, n]) => `${method} ${(n / files).toFixed(2)}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}
