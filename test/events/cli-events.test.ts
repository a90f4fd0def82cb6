import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type CliProcess, makeTempDir, startCli, stopAllCli, cliAt } from '../helpers/cli.js';

/**
 * CLI changes emit events (docs/spec/events.md, Changes made by the CLI):
 * `capstan put`, `mkdir`, `mv` and `rm` with a webhook configured, first with
 * no gateway running (the events wait in the drop box and are delivered once
 * a gateway starts), then with one running (through the node socket for the
 * stores; the events reach the webhook within its poll).
 */

interface Received {
  id: string;
  user: string;
  operation: string;
  base: string;
  path: string;
  fromPath?: string;
  size?: number;
  checksums?: { type: string; value: string }[];
}

let tmp: { dir: string; cleanup: () => Promise<void> };
let hook: Server;
let node: string;
let root: string;
const received: Received[] = [];

const { ok } = cliAt(() => node, { timeoutMs: 60_000 });

beforeAll(async () => {
  tmp = await makeTempDir('capstan-cli-events-');
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('end', () => {
      received.push(JSON.parse(body) as Received);
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  node = path.join(tmp.dir, 'node');
  await ok(['init']);
  const cfg = path.join(node, 'capstan.cfg');
  const url = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
  await writeFile(cfg, (await readFile(cfg, 'utf8')).replace(/^webhook\.url =.*$/m, `webhook.url = ${url}`));
  await writeFile(path.join(tmp.dir, 'key.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBdbnUytqzjG1D8CmSmSPsqzfaYLeTKdB0Y7nOyEmv1D t@x\n');
  root = (await ok(['account', 'add', 'alice', '--key', path.join(tmp.dir, 'key.pub')])).trim();
});
afterAll(async () => {
  await stopAllCli();
  await new Promise((r) => hook.close(r));
  await tmp.cleanup();
});

const summary = (events: Received[]): string[][] =>
  events.map((e) => [e.user, e.operation, e.base, e.path, e.fromPath ?? '']).sort((a, b) => a.join(' ').localeCompare(b.join(' ')));

describe('CLI changes emit events', () => {
  it('recorded with no gateway running, delivered once one starts; then live through a running gateway', async () => {
    const file = path.join(tmp.dir, 'hello.txt');
    await writeFile(file, 'hello, events\n');
    await ok(['mkdir', `${root}/in/deep`, '-p']);
    await ok(['put', file, `${root}/in/hello.txt`]);
    await ok(['mv', `${root}/in/hello.txt`, `${root}/in/deep`]);
    await ok(['rm', `${root}/in/deep/hello.txt`]);
    const other = (await ok(['mkdir'])).trim();
    await ok(['put', file, `${other}/x`]);
    // Nobody delivers yet: the changes wait in the drop box, one committed event file each.
    const box = path.join(node, 'store', 'outbox-incoming');
    expect((await readdir(box)).filter((n) => n.endsWith('.event'))).toHaveLength(6);
    expect(received).toEqual([]);

    let gw: CliProcess | undefined = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    try {
      await gw.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) /m, 'stderr', 60_000);
      await vi.waitFor(() => expect(received).toHaveLength(6), { timeout: 20_000, interval: 50 });
      expect(summary(received)).toEqual(
        summary([
          { id: '', user: 'alice', operation: 'mkdir', base: 'root', path: 'in' },
          { id: '', user: 'alice', operation: 'mkdir', base: 'root', path: 'in/deep' },
          { id: '', user: 'alice', operation: 'upload', base: 'root', path: 'in/hello.txt' },
          { id: '', user: 'alice', operation: 'rename', base: 'root', path: 'in/deep/hello.txt', fromPath: 'in/hello.txt' },
          { id: '', user: 'alice', operation: 'remove', base: 'root', path: 'in/deep/hello.txt' },
          { id: '', user: 'capstan:cli', operation: 'upload', base: 'uri', path: 'x' },
        ]),
      );
      const upload = received.find((e) => e.operation === 'upload' && e.user === 'alice')!;
      expect(upload.size).toBe(14);
      expect(upload.checksums?.[0]).toEqual({ type: 'sha256', value: createHash('sha256').update('hello, events\n').digest('hex') });
      expect(new Set(received.map((e) => e.id)).size).toBe(6);
      expect((await readdir(box)).filter((n) => n.endsWith('.event') || n.endsWith('.intent'))).toEqual([]);

      // With the gateway running, the CLI reaches the stores through it and its events come within a poll.
      await ok(['mkdir', `${root}/live`]);
      await ok(['rm', `${root}/live`]);
      await vi.waitFor(() => expect(received).toHaveLength(8), { timeout: 20_000, interval: 50 });
      expect(summary(received.slice(6))).toEqual(
        summary([
          { id: '', user: 'alice', operation: 'mkdir', base: 'root', path: 'live' },
          { id: '', user: 'alice', operation: 'rmdir', base: 'root', path: 'live' },
        ]),
      );
      await gw.stop('SIGTERM');
      gw = undefined;
    } finally {
      await gw?.stop('SIGKILL');
    }
  }, 120_000);
});
