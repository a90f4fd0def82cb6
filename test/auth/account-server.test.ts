import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AccountServerClient, type AccountServerOptions } from '../../src/auth/account-server.js';
import { waitFor } from '../helpers/wait.js';
import { CAP_A, CAP_B, captureLogger } from './helpers.js';

interface Seen {
  contentType: string | undefined;
  fields: Record<string, string>;
}

type Responder = (fields: Record<string, string>, res: ServerResponse) => void;

/** A real HTTP account server on 127.0.0.1 that parses the multipart body it gets, as a real one would. */
async function startServer(respond: Responder): Promise<{ url: string; seen: Seen[]; connections: () => number; server: Server }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const form = await new Request('http://x/', {
          method: 'POST',
          headers: { 'content-type': req.headers['content-type'] ?? '' },
          body: Buffer.concat(chunks),
        }).formData();
        const fields: Record<string, string> = {};
        for (const [k, v] of form.entries()) fields[k] = String(v);
        seen.push({ contentType: req.headers['content-type'], fields });
        respond(fields, res);
      })().catch(() => {
        res.statusCode = 400;
        res.end('bad form');
      });
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/auth`, seen, connections: () => connections, server };
}

const servers: Server[] = [];
const clients: AccountServerClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise((r) => {
          s.closeAllConnections();
          s.close(r);
        }),
    ),
  );
});

function client(url: string, extra: Partial<AccountServerOptions> = {}) {
  const log = captureLogger();
  const c = new AccountServerClient({ url, logger: log.logger, ...extra });
  clients.push(c);
  return { c, log };
}

/** Answers CAP_A to alice with the right password, 0 to everything else. */
const tahoeLike: Responder = (f, res) => {
  res.end(f.action === 'authenticate' && f.email === 'alice@example.com' && f.passwd === 'pä ss\r\n"word"' ? `  ${CAP_A}\n` : '0');
};

describe('AccountServerClient', () => {
  it('POSTs multipart/form-data with action, email, passwd and returns the trimmed cap', async () => {
    const srv = await startServer(tahoeLike);
    const { c, log } = client(srv.url);
    expect(await c.authenticate('alice@example.com', 'pä ss\r\n"word"')).toBe(CAP_A);
    expect(srv.seen).toHaveLength(1);
    expect(srv.seen[0]!.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(srv.seen[0]!.fields).toEqual({ action: 'authenticate', email: 'alice@example.com', passwd: 'pä ss\r\n"word"' });
    expect(log.text()).not.toContain(CAP_A);
    expect(log.text()).not.toContain('word');
  });

  it('`0` is a refusal, and refusals are never cached', async () => {
    const srv = await startServer(tahoeLike);
    const { c } = client(srv.url);
    expect(await c.authenticate('alice@example.com', 'wrong')).toBeNull();
    expect(await c.authenticate('alice@example.com', 'wrong')).toBeNull();
    expect(srv.seen).toHaveLength(2);
    expect(c.cacheSize).toBe(0);
  });

  it('a 5xx, a 4xx, a non-cap body and an oversized body deny and log a warning', async () => {
    let mode = 0;
    const srv = await startServer((_f, res) => {
      if (mode === 0) {
        res.statusCode = 500;
        res.end(CAP_A);
      } else if (mode === 1) {
        res.statusCode = 403;
        res.end(CAP_A);
      } else if (mode === 2) res.end('<html>URI:DIR2:secretsecret</html>');
      else res.end(`CS1:DIR:${'A'.repeat(10_000)}`);
    });
    const { c, log } = client(srv.url);
    for (mode = 0; mode < 4; mode++) expect(await c.authenticate('alice', 'pw')).toBeNull();
    const warnings = log.lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(4);
    expect(warnings.map((w) => w.status)).toEqual([500, 403, undefined, undefined]);
    expect(log.text()).not.toContain('secretsecret');
  });

  it('a server that does not answer in time denies after the timeout', async () => {
    const srv = await startServer(() => {
      /* never answers */
    });
    const { c, log } = client(srv.url, { timeoutMs: 300 });
    const t0 = Date.now();
    expect(await c.authenticate('alice', 'pw')).toBeNull();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(log.lines.some((l) => l.level === 40 && String(l.msg).includes('too slow'))).toBe(true);
  });

  it('a refused connection denies, without throwing', async () => {
    const srv = await startServer(tahoeLike);
    await new Promise((r) => srv.server.close(r));
    const { c, log } = client(srv.url, { timeoutMs: 2000 });
    expect(await c.authenticate('alice@example.com', 'pä ss\r\n"word"')).toBeNull();
    expect(log.lines.some((l) => l.level === 40 && l.err === 'ECONNREFUSED')).toBe(true);
  });

  it('caches successes for the TTL, keyed by the password too', async () => {
    let clock = 1_000_000;
    const srv = await startServer(tahoeLike);
    const { c } = client(srv.url, { cacheTtlMs: 60_000, now: () => clock });
    const pw = 'pä ss\r\n"word"';
    expect(await c.authenticate('alice@example.com', pw)).toBe(CAP_A);
    expect(await c.authenticate('alice@example.com', pw)).toBe(CAP_A);
    expect(srv.seen).toHaveLength(1);
    // A different password is not served from the cache.
    expect(await c.authenticate('alice@example.com', 'other')).toBeNull();
    expect(srv.seen).toHaveLength(2);
    clock += 59_000;
    expect(await c.authenticate('alice@example.com', pw)).toBe(CAP_A);
    expect(srv.seen).toHaveLength(2);
    clock += 2_000;
    expect(await c.authenticate('alice@example.com', pw)).toBe(CAP_A);
    expect(srv.seen).toHaveLength(3);
  });

  it('the cache is bounded in entries', async () => {
    const srv = await startServer((f, res) => res.end(f.email === 'b' ? CAP_B : CAP_A));
    const { c } = client(srv.url, { maxCacheEntries: 2 });
    for (const u of ['a', 'b', 'c', 'd']) await c.authenticate(u, 'pw');
    expect(c.cacheSize).toBe(2);
    expect(await c.authenticate('d', 'pw')).toBe(CAP_A);
    expect(srv.seen).toHaveLength(4);
    expect(await c.authenticate('a', 'pw')).toBe(CAP_A);
    expect(srv.seen).toHaveLength(5);
  });

  it('keeps its connection alive between requests', async () => {
    const srv = await startServer(tahoeLike);
    const { c } = client(srv.url);
    // undici returns a socket to the pool a tick after the body ends, so
    // back-to-back requests may open a second one; with a pause they reuse.
    // (A sleep, as undici announces no event when the socket is back.)
    for (let i = 0; i < 4; i++) {
      await c.authenticate('bob', 'x');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(srv.seen).toHaveLength(4);
    expect(srv.connections()).toBeLessThanOrEqual(2);
  });

  it('denies rather than queues beyond maxInFlight, and never asks about a malformed user name', async () => {
    const pending: ServerResponse[] = [];
    const srv = await startServer((_f, res) => pending.push(res));
    const { c } = client(srv.url, { maxInFlight: 1 });
    const first = c.authenticate('alice', 'pw');
    expect(await c.authenticate('bob', 'pw')).toBeNull();
    expect(await c.authenticate('not a user', 'pw')).toBeNull();
    await waitFor(() => pending.length > 0);
    pending[0]!.end(CAP_A);
    expect(await first).toBe(CAP_A);
    expect(srv.seen.map((s) => s.fields.email)).toEqual(['alice']);
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => new AccountServerClient({ url: 'ftp://x/', logger: captureLogger().logger })).toThrow(
      expect.objectContaining({ name: 'InvalidInputError' }),
    );
    expect(() => new AccountServerClient({ url: 'not a url', logger: captureLogger().logger })).toThrow(
      expect.objectContaining({ name: 'InvalidInputError' }),
    );
  });
});
