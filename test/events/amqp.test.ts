import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapstanEvent } from '../../src/events/index.js';
import { makeTempDir, runCli, startCli, stopAllCli, type CliProcess } from '../helpers/cli.js';
import { RabbitMq, rabbitmqMissing } from '../helpers/rabbitmq.js';
import { waitFor } from '../helpers/wait.js';
import { connectSsh2, sftpOf } from '../sftp/gateway-fixture.js';

/**
 * The AMQP sink end to end: a real `capstan run` (the built CLI), a real
 * RabbitMQ on loopback started by this file, uploads through ssh2's SFTP
 * client. Covers: events in a bound queue with the manifest's checksums;
 * the broker down during uploads and back; the gateway SIGKILLed with events
 * pending (unroutable: the queue unbound) and restarted.
 */

const missing = rabbitmqMissing();
if (missing !== undefined) console.warn(`[skipped] AMQP events tests: ${missing}`);

const EXCHANGE = 'capstan-test';
const QUEUE = 'capstan-events';
const PASSWORD = 'amqp-test-password';

let mq: RabbitMq | undefined;
let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let gateway: CliProcess | undefined;
let port = 0;
let httpPort = 0;
let conn: ChannelModel | undefined;
let ch: Channel;

async function cli(args: string[], input?: string): Promise<string> {
  const r = await runCli(['-d', node, ...args], input !== undefined ? { input } : {});
  if (r.code !== 0) throw new Error(`capstan ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function startRun(): Promise<void> {
  gateway = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
  port = Number((await gateway.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+)/m))[1]);
  httpPort = Number((await gateway.waitFor(/^capstan http on 127\.0\.0\.1:(\d+)/m))[1]);
}

async function brokerClient(): Promise<void> {
  conn = await amqp.connect(mq!.url);
  conn.on('error', () => {});
  ch = await conn.createChannel();
  ch.on('error', () => {});
}

async function closeClient(): Promise<void> {
  await conn?.close().catch(() => {});
  conn = undefined;
}

/** Takes messages off the queue until `n` arrived (fails after the timeout). */
async function take(n: number, timeoutMs = 30_000): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  await waitFor(
    async () => {
      while (out.length < n) {
        const msg = await ch.get(QUEUE, { noAck: true });
        if (msg === false) return false;
        out.push(msg);
      }
      return true;
    },
    { timeoutMs, intervalMs: 50 },
  );
  return out;
}

async function upload(files: Record<string, Buffer>): Promise<void> {
  const client = await connectSsh2(port, 'alice', { password: PASSWORD });
  try {
    const sftp = await sftpOf(client);
    for (const [name, data] of Object.entries(files)) {
      await new Promise<void>((resolve, reject) => sftp.writeFile(name, data, (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    client.end();
  }
}

const body = (m: GetMessage): CapstanEvent => JSON.parse(m.content.toString('utf8')) as CapstanEvent;
const hex = (algo: string, data: Buffer): string => createHash(algo).update(data).digest('hex');

describe.skipIf(missing !== undefined)('AMQP events through a real gateway and RabbitMQ', () => {
  beforeAll(async () => {
    tmp = await makeTempDir('capstan-amqp-');
    node = path.join(tmp.dir, 'node');
    const [broker] = await Promise.all([RabbitMq.start(), cli(['init'])]);
    mq = broker;
    await brokerClient();
    await ch.assertExchange(EXCHANGE, 'topic', { durable: true });
    await ch.assertQueue(QUEUE, { durable: true });
    await ch.bindQueue(QUEUE, EXCHANGE, '#');

    const cfgFile = path.join(node, 'capstan.cfg');
    const cfg = (await readFile(cfgFile, 'utf8'))
      .replace(/^amqp\.url =.*$/m, `amqp.url = ${mq.url}`)
      .replace(/^amqp\.exchange =.*$/m, `amqp.exchange = ${EXCHANGE}`)
      .replace(/^amqp\.routing_key =.*$/m, 'amqp.routing_key = uploads.test')
      .replace(/^retry\.initial_delay =.*$/m, 'retry.initial_delay = 100')
      .replace(/^retry\.max_delay =.*$/m, 'retry.max_delay = 1000')
      .replace(/^nickname =.*$/m, 'nickname = amqp-gw')
      .replace(/^checksums =.*$/m, 'checksums = sha256,md5')
      .replace(/^listen =$/m, 'listen = 127.0.0.1:0');
    await writeFile(cfgFile, cfg);
    const root = (await cli(['mkdir'])).trim();
    await cli(['account', 'add', 'alice', '--password-stdin', '--root', root], PASSWORD);
    await startRun();
  }, 120_000);

  afterAll(async () => {
    await closeClient();
    await stopAllCli();
    await mq?.stop();
    await tmp?.cleanup();
  }, 60_000);

  it('publishes every committed upload, persistent and confirmed, with the checksums [storage] checksums lists', async () => {
    const files = { '/a.bin': randomBytes(300_000), '/b.txt': Buffer.from('hello events\n') };
    await upload(files);
    const msgs = await take(2);
    expect(msgs).toHaveLength(2);
    for (const m of msgs) {
      const ev = body(m);
      const data = files[`/${ev.path}` as keyof typeof files];
      expect(ev).toMatchObject({ version: 1, operation: 'upload', user: 'alice', gateway: 'amqp-gw', base: 'root', size: data.length });
      expect(ev.checksums).toEqual([
        { type: 'sha256', value: hex('sha256', data) },
        { type: 'md5', value: hex('md5', data) },
      ]);
      expect(m.properties).toMatchObject({
        deliveryMode: 2,
        contentType: 'application/json',
        messageId: ev.id,
        correlationId: ev.id,
        type: 'capstan.upload',
      });
      expect(m.fields.routingKey).toBe('uploads.test');
      expect(m.fields.exchange).toBe(EXCHANGE);
    }
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
        return /^capstan_events_pending 0$/m.test(text) && text;
      },
      { intervalMs: 100 },
    );
    expect(metrics).toMatch(/^capstan_events_delivered_total\{sink="amqp"\} [2-9]$/m);
    expect(metrics).toMatch(/^capstan_events_sink_failures\{sink="amqp"\} 0$/m);
  }, 60_000);

  it('loses nothing while the broker is down: uploads still succeed and every event arrives after it is back', async () => {
    await closeClient();
    await mq!.stopBroker();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 5; i++) files[`/down-${i}.txt`] = Buffer.from(`written while the broker is down ${i}\n`);
    await upload(files);
    await mq!.startBroker();
    await brokerClient();
    const msgs = await take(5, 40_000);
    const paths = new Set(msgs.map((m) => body(m).path));
    expect([...paths].sort()).toEqual(
      Object.keys(files)
        .map((f) => f.slice(1))
        .sort(),
    );
    expect(gateway!.stdout).toMatch(/"event":"event_delivery_failed"/);
  }, 120_000);

  it('events pending at a SIGKILL are delivered after the restart', async () => {
    // Unroutable (no queue bound): the broker returns them, so they stay in the outbox.
    await ch.unbindQueue(QUEUE, EXCHANGE, '#');
    const files = { '/killed-1.txt': Buffer.from('one\n'), '/killed-2.txt': Buffer.from('two\n'), '/killed-3.txt': Buffer.from('three\n') };
    await upload(files);
    await gateway!.waitFor(/could not route events/, 'stdout', 20_000);
    await gateway!.stop('SIGKILL');
    await ch.bindQueue(QUEUE, EXCHANGE, '#');
    await startRun();
    const msgs = await take(3, 30_000);
    const events = msgs.map(body);
    expect(events.map((e) => e.path).sort()).toEqual(['killed-1.txt', 'killed-2.txt', 'killed-3.txt']);
    expect(new Set(events.map((e) => e.id)).size).toBe(3);
  }, 90_000);
});
