import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostPort } from '../config/index.js';
import type { Logger } from '../log.js';
import { PROMETHEUS_CONTENT_TYPE } from '../util/metrics.js';

/**
 * The optional loopback HTTP listener: GET /healthz and GET /metrics, nothing
 * else. No authentication (the config only accepts loopback addresses), no
 * request bodies, a handful of connections: it is for a local health checker
 * and a Prometheus agent.
 */

export interface HealthProbe {
  /** Named in the 503 body and the log, e.g. "chunk store". */
  name: string;
  /** Resolves when the component answers; must honour `signal`. */
  run(signal: AbortSignal): Promise<unknown>;
}

export interface HttpListenerOptions {
  listen: HostPort;
  probes: HealthProbe[];
  /** Each probe's deadline. */
  probeTimeoutMs?: number;
  metrics(): string;
  logger: Logger;
}

export interface HttpListener {
  address: HostPort;
  close(): Promise<void>;
}

const MAX_CONNECTIONS = 16;
export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;

/** Runs a probe against a deadline; a probe that ignores its signal still loses the race. */
async function probeOnce(probe: HealthProbe, timeoutMs: number): Promise<string | undefined> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve('timed out');
    }, timeoutMs);
  });
  try {
    return await Promise.race([
      probe.run(controller.signal).then(
        () => undefined,
        (err: unknown) => (err as Error)?.name ?? 'error',
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startHttpListener(options: HttpListenerOptions): Promise<HttpListener> {
  const log = options.logger.child({ component: 'http' });
  const timeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;

  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    try {
      if (path === '/healthz') {
        const results = await Promise.all(options.probes.map(async (p) => ({ name: p.name, fault: await probeOnce(p, timeoutMs) })));
        const failed = results.filter((r) => r.fault !== undefined);
        if (failed.length === 0) {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok\n');
        } else {
          log.warn({ event: 'health_failed', failed: failed.map((f) => `${f.name}: ${f.fault}`) }, 'health check failed');
          res
            .writeHead(503, { 'content-type': 'text/plain', 'cache-control': 'no-store' })
            .end(failed.map((f) => `unhealthy: ${f.name}: ${f.fault}\n`).join(''));
        }
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(options.metrics());
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found (try /healthz or /metrics)\n');
      }
    } catch (err) {
      log.error({ err: (err as Error)?.name }, 'http handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    }
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const info = server.address() as AddressInfo;
  return {
    address: { host: info.address, port: info.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
