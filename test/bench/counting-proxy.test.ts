import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CountingProxy, countsBetween, perFile } from '../../bench/counting-proxy.js';

/**
 * The proxy the S3 workload counts requests with, in front of a plain HTTP
 * server on loopback that answers with what it received (the bench smoke
 * test runs it in front of the real Swift, where a changed Host header would
 * break every SigV4 signature).
 */

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bytes: number;
  sha256: string;
}

let upstream: Server;
let upstreamUrl: string;
let proxy: CountingProxy;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
    });
    req.on('end', () => {
      const seen: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes, sha256: hash.digest('hex') };
      if (req.url === '/big') {
        // A streamed answer larger than any socket buffer.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-seen': JSON.stringify({ ...seen, headers: {} }) });
        res.end(Buffer.alloc(8 * 1024 * 1024, 7));
        return;
      }
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json', connection: 'keep-alive' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(seen));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  proxy = await CountingProxy.start(upstreamUrl);
});

afterAll(async () => {
  await proxy?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
});

describe('CountingProxy', () => {
  it('forwards method, path, Host and body unchanged, and counts each request by method', async () => {
    const before = proxy.counts();
    const answersBefore = proxy.answers();
    const body = randomBytes(5 * 1024 * 1024 + 3);
    const put = await fetch(`${proxy.endpoint}/bucket/key?x-id=PutObject`, {
      method: 'PUT',
      body,
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    expect(put.status).toBe(200);
    const seen = (await put.json()) as Seen;
    expect(seen).toMatchObject({ method: 'PUT', url: '/bucket/key?x-id=PutObject', bytes: body.length });
    expect(seen.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    // The Host the client signed is the proxy's, and that is what the upstream must see.
    expect(seen.headers.host).toBe(new URL(proxy.endpoint).host);
    expect(seen.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');

    const missing = await fetch(`${proxy.endpoint}/missing`);
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
    const head = await fetch(`${proxy.endpoint}/bucket/key`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const big = await fetch(`${proxy.endpoint}/big`);
    expect((await big.arrayBuffer()).byteLength).toBe(8 * 1024 * 1024);
    const del = await fetch(`${proxy.endpoint}/bucket/key`, { method: 'DELETE' });
    await del.arrayBuffer();

    const counted = countsBetween(before, proxy.counts());
    expect(counted).toEqual({ PUT: 1, GET: 2, HEAD: 1, DELETE: 1 });
    expect(countsBetween(answersBefore, proxy.answers())).toEqual({ '200': 4, '404': 1 });
    expect(perFile(counted, 2)).toBe('DELETE 0.50, GET 1.00, HEAD 0.50, PUT 0.50');
  });

  it('answers 502 when the upstream is gone, and still counts the request', async () => {
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', () => resolve()));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const orphan = await CountingProxy.start(`http://127.0.0.1:${port}`);
    try {
      const res = await fetch(`${orphan.endpoint}/x`, { method: 'PUT', body: 'abc' });
      expect(res.status).toBe(502);
      await res.arrayBuffer();
      expect(orphan.counts()).toEqual({ PUT: 1 });
      expect(orphan.answers()).toEqual({ failed: 1 });
    } finally {
      await orphan.close();
    }
  });

  it('reports only methods that were used between two snapshots', () => {
    expect(countsBetween({ PUT: 2, GET: 5 }, { PUT: 7, GET: 5, HEAD: 1 })).toEqual({ PUT: 5, HEAD: 1 });
    expect(perFile({}, 10)).toBe('none');
  });
});
