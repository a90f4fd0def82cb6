import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEvents, type EventsService } from '../../src/events/index.js';
import { silentLogger } from '../../src/log.js';
import { MemoryChunkStore, MemorySlotStore } from '../../src/store/index.js';
import { createTree } from '../../src/tree/index.js';
import { waitFor } from '../helpers/wait.js';

/** No intent is left here to resolve; the tree is only what startEvents looks intents up in. */
const context = { gateway: 'gw1', tree: createTree({ chunks: new MemoryChunkStore(), slots: new MemorySlotStore() }) };

interface Received {
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

let dir: string;
let server: Server;
let url: string;
const received: Received[] = [];
/** Status codes to answer, in order; 200 once used up. */
const answers: number[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-webhook-'));
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = answers.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('webhook sink', () => {
  it('POSTs signed JSON, retries a 500 with the same body, and survives a restart with events pending', async () => {
    await writeFile(path.join(dir, 'secret'), 'hook-secret\n');
    const config = {
      outboxDir: path.join(dir, 'outbox'),
      maxEvents: 100,
      format: 'capstan' as const,
      webhook: { url, secretFile: path.join(dir, 'secret'), timeoutMs: 2000 },
      retryInitialMs: 20,
      retryMaxMs: 100,
    };
    answers.push(500);
    let events: EventsService = (await startEvents(config, context, silentLogger()))!;
    const sums = { sha256: new Uint8Array(32).fill(1), md5: new Uint8Array(16).fill(2), sha1: new Uint8Array(20).fill(3) };
    events.recorder.admit();
    await (
      await events.recorder.begin(
        { user: 'alice', operation: 'upload', base: 'root', path: 'in/a.txt', size: 5, mtimeMs: 0, checksums: sums },
        [],
      )
    ).committed();
    await waitFor(() => events.outbox.pending === 0);
    expect(events.outbox.pending).toBe(0);
    expect(received.length).toBe(2);
    const [first, second] = received as [Received, Received];
    expect(second.body).toBe(first.body);
    const body = JSON.parse(second.body) as Record<string, unknown>;
    expect(body).toMatchObject({
      version: 1,
      gateway: 'gw1',
      user: 'alice',
      operation: 'upload',
      base: 'root',
      path: 'in/a.txt',
      size: 5,
      mtime: '1970-01-01T00:00:00.000Z',
      checksums: [
        { type: 'sha256', value: '01'.repeat(32) },
        { type: 'md5', value: '02'.repeat(16) },
        { type: 'sha1', value: '03'.repeat(20) },
      ],
    });
    expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const expected = 'sha256=' + createHmac('sha256', 'hook-secret').update(second.body).digest('hex');
    expect(second.headers['x-capstan-signature']).toBe(expected);
    expect(second.headers['content-type']).toBe('application/json');

    // Receiver down (every answer 503), gateway stopped with the event queued, then restarted: delivered.
    answers.push(...Array(1000).fill(503));
    await (await events.recorder.begin({ user: 'alice', operation: 'mkdir', base: 'root', path: 'later' }, [])).committed();
    await waitFor(() => received.length > 2); // a first attempt was refused
    await events.close();
    answers.length = 0;
    // A POST the stopped service had in flight may still land; the restarted one posts to its own URL.
    const restarted = { ...config, webhook: { ...config.webhook, url: `${url}?after-restart` } };
    events = (await startEvents(restarted, context, silentLogger()))!;
    expect(events.outbox.pending).toBe(1);
    await waitFor(() => events.outbox.pending === 0);
    expect(events.outbox.pending).toBe(0);
    const afterRestart = received.filter((r) => r.url === '/hook?after-restart');
    expect(afterRestart.map((r) => (JSON.parse(r.body) as { path: string }).path)).toEqual(['later']);
    await events.close();
  });
});
