import { randomBytes } from 'node:crypto';
// The start/stop logic lives in the project's script, so operators and the
// benchmark start Swift exactly as the tests do.
// @ts-expect-error -- plain ESM script without type declarations
import { startSwift, stopSwift, swiftUnavailable } from '../../scripts/swift-server.mjs';
import { S3ChunkStore, type S3ChunkStoreOptions } from '../../src/store/chunks/s3/index.js';
import { skipNotice } from './openssh.js';
import { registerServerStop } from './server-stops.js';

/**
 * A real OpenStack Swift (s3api + tempauth) on loopback, started by
 * scripts/swift-server.mjs. Tests call startSwiftServer() in beforeAll and
 * stopSwiftServer() in afterAll, which kills every process by pid even when
 * the tests failed (and server-stops.ts does, should beforeAll time out
 * while Swift starts). Without python3-swift and memcached the suites are
 * reported skipped with the reason.
 */
export interface SwiftServer {
  endpoint: string;
  dir: string;
  pids: number[];
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export const SWIFT_SKIP: string | undefined = skipNotice(swiftUnavailable() as string | undefined, 'S3 tests against Swift');

/** Each server's registered stop (server-stops.ts), so stopping it here also takes it off the list. */
const stops = new WeakMap<SwiftServer, () => Promise<void>>();

/**
 * `timeoutMs`: how long Swift may take to answer (default 45 s, in up to
 * three starts on fresh ports; a loaded machine needs more). Its stop is
 * registered before it is waited for.
 */
export async function startSwiftServer(options: { timeoutMs?: number } = {}): Promise<SwiftServer> {
  let stop: (() => Promise<void>) | undefined;
  const registerStop = (halt: () => Promise<void>) => (stop = registerServerStop(halt));
  const server = (await startSwift({ ...options, registerStop })) as SwiftServer;
  if (stop !== undefined) stops.set(server, stop);
  return server;
}

export async function stopSwiftServer(server: SwiftServer | undefined): Promise<void> {
  if (server) await (stops.get(server) ?? (() => stopSwift(server)))();
}

/** Store options for `server`, with a fresh key prefix so each store starts empty. */
export function storeOptions(server: SwiftServer, bucket: string, extra: Partial<S3ChunkStoreOptions> = {}): S3ChunkStoreOptions {
  return {
    endpoint: server.endpoint,
    region: server.region,
    bucket,
    prefix: `t-${randomBytes(6).toString('hex')}/`,
    addressing: 'path',
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    concurrency: 8,
    timeoutMs: 10_000,
    ...extra,
  };
}

/** Creates `bucket` on `server` (idempotent). */
export async function createBucket(server: SwiftServer, bucket: string): Promise<void> {
  const store = new S3ChunkStore(storeOptions(server, bucket));
  try {
    await store.createBucket();
  } finally {
    await store.close();
  }
}

/** What the fault proxy does to the next requests; change it between (or during) tests. */
export interface FaultPlan {
  /** Answer every Nth request (1-based count) with `status` instead of forwarding it. 0: never. */
  failEvery: number;
  status: number;
  /** Reset the connection (no answer) on every Nth request. 0: never. */
  resetEvery: number;
  /** Hold every request this long before forwarding; Infinity: never answer. */
  delayMs: number;
  /** Rewrites the body of every ListObjectsV2 answer (to play an S3 implementation that answers differently). */
  rewriteListing?: ((xml: string) => string) | undefined;
}

export interface FaultProxy {
  endpoint: string;
  plan: FaultPlan;
  /** Requests received, and the most that were in flight at once. */
  stats: { requests: number; failed: number; resets: number; maxInFlight: number };
  /** Sees (and may change) each request's headers before it is forwarded: to record how requests were signed. */
  onRequest?: (headers: import('node:http').IncomingHttpHeaders) => void;
  reset(plan?: Partial<FaultPlan>): void;
  close(): Promise<void>;
}

const NO_FAULTS: FaultPlan = { failEvery: 0, status: 503, resetEvery: 0, delayMs: 0 };

/**
 * A tiny HTTP proxy on 127.0.0.1 in front of `target` (the local Swift) that
 * injects faults: 5xx/429 answers, connection resets and slow answers. The
 * Host header is forwarded as the client sent it, so SigV4 signatures made
 * for the proxy's address still verify at Swift.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const http = await import('node:http');
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<import('node:net').Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  const proxy: FaultProxy = {
    endpoint: '',
    plan: { ...NO_FAULTS },
    stats: { requests: 0, failed: 0, resets: 0, maxInFlight: 0 },
    reset(plan = {}) {
      proxy.plan = { ...NO_FAULTS, ...plan };
      proxy.stats = { requests: 0, failed: 0, resets: 0, maxInFlight: 0 };
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const n = ++proxy.stats.requests;
    inFlight += 1;
    proxy.stats.maxInFlight = Math.max(proxy.stats.maxInFlight, inFlight);
    res.on('close', () => (inFlight -= 1));
    const { plan } = proxy;
    if (plan.resetEvery > 0 && n % plan.resetEvery === 0) {
      proxy.stats.resets += 1;
      req.socket.destroy();
      return;
    }
    if (plan.failEvery > 0 && n % plan.failEvery === 0) {
      proxy.stats.failed += 1;
      req.resume();
      res.writeHead(plan.status, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0"?><Error><Code>ServiceUnavailable</Code></Error>');
      return;
    }
    proxy.onRequest?.(req.headers);
    const forward = () => {
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
        (answer) => {
          const rewrite = plan.rewriteListing;
          if (rewrite === undefined || req.method !== 'GET' || !/[?&]list-type=2/.test(req.url ?? '')) {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
            return;
          }
          const parts: Buffer[] = [];
          answer.on('data', (part: Buffer) => parts.push(part));
          answer.on('end', () => {
            const body = Buffer.from(rewrite(Buffer.concat(parts).toString('utf8')));
            const { 'content-length': _, 'transfer-encoding': __, ...headers } = answer.headers;
            res.writeHead(answer.statusCode ?? 502, { ...headers, 'content-length': body.length });
            res.end(body);
          });
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    };
    if (plan.delayMs === Infinity) return; // never answered; the client must time out
    if (plan.delayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        forward();
      }, plan.delayMs);
      timers.add(t);
    } else {
      forward();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  proxy.endpoint = `http://127.0.0.1:${port}`;
  return proxy;
}
