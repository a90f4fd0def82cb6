import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/callback.js';
import { makeTempDir, runCli, startCli, stopAllCli, type CliProcess } from '../helpers/cli.js';
import { RabbitMq, rabbitmqMissing } from '../helpers/rabbitmq.js';
import { connectSsh2, sftpOf } from '../sftp/gateway-fixture.js';

/**
 * `[events] format = localega`: a real `capstan run` publishes to a real
 * RabbitMQ exactly the messages a LocalEGA inbox sends to CentralEGA's
 * files.inbox (docs/spec/events.md, LocalEGA format;
 * docs/spec/localega-inbox.schema.json), which the test takes off the queue
 * and checks field by field.
 */

const missing = rabbitmqMissing();
if (missing !== undefined) {
  if (process.env.CI === 'true') throw new Error(`LocalEGA events test needs RabbitMQ: ${missing}`);
  console.warn(`[skipped] LocalEGA events test: ${missing}`);
}

const QUEUE = 'files.inbox';
const PASSWORD = 'localega-test-password';
let mq: RabbitMq | undefined;
let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
let gateway: CliProcess | undefined;
let conn: ChannelModel | undefined;
let ch: Channel;
let client: ssh2.Client;
let sftp: ssh2.SFTPWrapper;

async function cli(args: string[], input?: string): Promise<string> {
  const r = await runCli(['-d', node, ...args], input !== undefined ? { input } : {});
  if (r.code !== 0) throw new Error(`capstan ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function take(n: number, timeoutMs = 30_000): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < deadline) {
    const msg = await ch.get(QUEUE, { noAck: true });
    if (msg === false) await new Promise((r) => setTimeout(r, 50));
    else out.push(msg);
  }
  return out;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** docs/spec/localega-inbox.schema.json, checked by hand (no JSON Schema validator is installed): exact keys and types. */
function expectLocalEgaMessage(m: GetMessage): Record<string, unknown> {
  expect(m.properties.contentType).toBe('application/json');
  expect(m.properties.deliveryMode).toBe(2);
  expect(m.properties.correlationId).toMatch(UUID);
  const msg = JSON.parse(m.content.toString('utf8')) as Record<string, unknown>;
  const keys: Record<string, string[]> = {
    upload: ['operation', 'user', 'filepath', 'filesize', 'file_last_modified', 'encrypted_checksums'],
    rename: ['operation', 'user', 'filepath', 'oldpath'],
    remove: ['operation', 'user', 'filepath'],
  };
  expect(Object.keys(keys)).toContain(msg.operation);
  expect(Object.keys(msg).sort()).toEqual([...keys[msg.operation as string]!].sort());
  expect(typeof msg.user).toBe('string');
  expect((msg.filepath as string).length).toBeGreaterThanOrEqual(2);
  if (msg.operation === 'upload') {
    expect(Number.isInteger(msg.filesize)).toBe(true);
    expect(Number.isInteger(msg.file_last_modified)).toBe(true);
    const sums = msg.encrypted_checksums as { type: string; value: string }[];
    expect(sums.map((s) => s.type)).toEqual(['sha256', 'md5']);
    expect(sums[0]!.value).toMatch(/^[a-f0-9]{64}$/);
    expect(sums[1]!.value).toMatch(/^[a-f0-9]{32}$/);
    for (const s of sums) expect(Object.keys(s).sort()).toEqual(['type', 'value']);
  }
  if (msg.operation === 'rename') expect((msg.oldpath as string).length).toBeGreaterThanOrEqual(2);
  return msg;
}

describe.skipIf(missing !== undefined)('[events] format = localega through a real gateway and RabbitMQ', () => {
  beforeAll(async () => {
    tmp = await makeTempDir('capstan-localega-');
    node = path.join(tmp.dir, 'node');
    const [broker] = await Promise.all([RabbitMq.start(), cli(['init'])]);
    mq = broker;
    conn = await amqp.connect(mq.url);
    conn.on('error', () => {});
    ch = await conn.createChannel();
    await ch.assertQueue(QUEUE, { durable: true });
    const cfgFile = path.join(node, 'capstan.cfg');
    const cfg = (await readFile(cfgFile, 'utf8'))
      .replace(/^format =.*$/m, 'format = localega')
      .replace(/^amqp\.url =.*$/m, `amqp.url = ${mq.url}`)
      .replace(/^amqp\.exchange =.*$/m, 'amqp.exchange =')
      .replace(/^amqp\.routing_key =.*$/m, `amqp.routing_key = ${QUEUE}`)
      .replace(/^retry\.initial_delay =.*$/m, 'retry.initial_delay = 100');
    await writeFile(cfgFile, cfg);
    await cli(['account', 'add', 'john.smith@example.org', '--password-stdin'], PASSWORD);
    gateway = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    const port = Number((await gateway.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+)/m))[1]);
    client = await connectSsh2(port, 'john.smith@example.org', { password: PASSWORD });
    sftp = await sftpOf(client);
  }, 120_000);

  afterAll(async () => {
    client?.end();
    await conn?.close().catch(() => {});
    await stopAllCli();
    await mq?.stop();
    await tmp?.cleanup();
  }, 60_000);

  it('publishes upload, rename and remove as the LocalEGA inbox does, and nothing for mkdir', async () => {
    const data = randomBytes(200_000);
    await call((cb) => sftp.mkdir('/somedir', cb));
    await call((cb) => sftp.writeFile('/somedir/encrypted.file.c4gh', data, cb));
    const stat = await call<ssh2.Stats>((cb) => sftp.stat('/somedir/encrypted.file.c4gh', cb));
    await call((cb) => sftp.rename('/somedir/encrypted.file.c4gh', '/somedir/encrypted-new.file.c4gh', cb));
    await call((cb) => sftp.unlink('/somedir/encrypted-new.file.c4gh', cb));
    const msgs = await take(3);
    expect(msgs).toHaveLength(3);
    const [upload, rename, remove] = msgs.map(expectLocalEgaMessage);
    expect(upload).toEqual({
      operation: 'upload',
      user: 'john.smith@example.org',
      filepath: 'somedir/encrypted.file.c4gh',
      filesize: data.length,
      file_last_modified: stat.mtime, // UNIX seconds, as SFTP shows the entry's mtime
      encrypted_checksums: [
        { type: 'sha256', value: createHash('sha256').update(data).digest('hex') },
        { type: 'md5', value: createHash('md5').update(data).digest('hex') },
      ],
    });
    expect(rename).toEqual({
      operation: 'rename',
      user: 'john.smith@example.org',
      filepath: 'somedir/encrypted-new.file.c4gh',
      oldpath: 'somedir/encrypted.file.c4gh',
    });
    expect(remove).toEqual({ operation: 'remove', user: 'john.smith@example.org', filepath: 'somedir/encrypted-new.file.c4gh' });
    // Each message has its own correlation id (the event id: the same on a redelivery).
    expect(new Set(msgs.map((m) => m.properties.correlationId)).size).toBe(3);
    expect(await take(1, 1000)).toEqual([]);
  });
});
