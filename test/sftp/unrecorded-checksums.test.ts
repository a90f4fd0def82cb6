import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Outbox, OutboxRecorder, type CapstanEvent } from '../../src/events/index.js';
import { silentLogger } from '../../src/log.js';
import type { ChunkStore } from '../../src/store/index.js';
import { call } from '../helpers/callback.js';
import { must } from '../helpers/backup-tools.js';
import { missing, run, skipNotice, ssh } from '../helpers/openssh.js';
import { connectSsh2, sftpOf, startGateway, type Gateway } from './gateway-fixture.js';
import { RawSftp, readString, str, u32, u64 } from './raw-sftp.js';

/**
 * A gateway recording SHA-256 alone ([storage] checksums = sha256, manifest
 * v2): upload events carry sha256 only, and the md5sum/sha1sum execs and
 * check-file compute the digest the manifest lacks by reading the file,
 * through the real SFTP server and OpenSSH's ssh client. Under CI a missing
 * ssh binary fails the test instead of skipping it.
 */

const SKIP_SSH = process.env.CI === 'true' ? undefined : skipNotice(missing('ssh'), 'unrecorded checksums over OpenSSH ssh');
const SKIP_RCLONE = process.env.CI === 'true' ? undefined : skipNotice(missing('rclone'), "rclone's checksum detection");
const CHUNK = 64 * 1024;
const big = randomBytes(5 * CHUNK + 123);
const digest = (algo: string, data: Buffer): string => createHash(algo).update(data).digest('hex');

let gw: Gateway;
let outbox: Outbox;
let outboxDir: string;
let client: ssh2.Client;
let sftp: ssh2.SFTPWrapper;
let chunkGets = 0;

beforeAll(async () => {
  outboxDir = await mkdtemp(path.join(tmpdir(), 'capstan-unrecorded-'));
  outbox = await Outbox.open(outboxDir, { maxEvents: 100, sinks: ['test'] });
  const countGets = (store: ChunkStore): ChunkStore =>
    new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'get') return (...args: unknown[]) => (chunkGets++, (value as (...a: unknown[]) => unknown).apply(target, args));
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  gw = await startGateway({
    chunkSize: CHUNK,
    checksums: ['sha256'],
    wrapChunks: countGets,
    // No intent is ever left to resolve here: the resolver is never asked.
    server: { events: new OutboxRecorder(outbox, 'gw-test', silentLogger(), async () => true) },
  });
  client = await connectSsh2(gw.port, 'alice', { password: gw.password });
  sftp = await sftpOf(client);
  await call((cb) => sftp.writeFile('/big.bin', big, cb));
});
afterAll(async () => {
  client?.end();
  await gw?.close();
  await outbox?.close();
  await rm(outboxDir, { recursive: true, force: true });
});

/** Runs `command` over ssh2's exec; `input`, when given, is its standard input (then its end). */
function exec(command: string, input?: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) return reject(err);
      if (input !== undefined) channel.end(input);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => (stdout += d.toString()));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      channel.on('exit', (c: number) => (code = c));
      channel.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

describe('a gateway recording sha256 only', () => {
  it('stores the file byte-identical, and its upload event carries sha256 and omits md5 and sha1', async () => {
    const back = (await call((cb) => sftp.readFile('/big.bin', cb))) as Buffer;
    expect(back.equals(big)).toBe(true);
    const stored = await outbox.read(outbox.cursor('test'), 100);
    const uploads = stored.map((s) => s.event).filter((e: CapstanEvent) => e.operation === 'upload');
    expect(uploads).toHaveLength(1);
    expect(uploads[0]!.checksums).toEqual([{ type: 'sha256', value: digest('sha256', big) }]);
  });

  it('sha256sum answers from the manifest; md5sum and sha1sum read the file to compute theirs', async () => {
    chunkGets = 0;
    expect(await exec('sha256sum /big.bin')).toEqual({ code: 0, stderr: '', stdout: `${digest('sha256', big)}  /big.bin\n` });
    expect(chunkGets).toBeLessThanOrEqual(1); // the manifest at most
    chunkGets = 0;
    expect(await exec('md5sum /big.bin')).toEqual({ code: 0, stderr: '', stdout: `${digest('md5', big)}  /big.bin\n` });
    expect(chunkGets).toBeGreaterThanOrEqual(6); // every data chunk
    expect(await exec('sha1sum -- /big.bin')).toEqual({ code: 0, stderr: '', stdout: `${digest('sha1', big)}  /big.bin\n` });
  });

  it.skipIf(SKIP_SSH)("md5sum and sha1sum from OpenSSH's ssh client", async () => {
    const md5 = await ssh(gw.alice, ['md5sum', '/big.bin']);
    expect([md5.code, md5.stdout]).toEqual([0, `${digest('md5', big)}  /big.bin\n`]);
    const sha1 = await ssh(gw.alice, ['sha1sum', '/big.bin']);
    expect([sha1.code, sha1.stdout]).toEqual([0, `${digest('sha1', big)}  /big.bin\n`]);
  });

  it('a bare md5sum, sha1sum or sha256sum hashes its standard input, as rclone runs it to find them; more than 1 MiB fails', async () => {
    const none = Buffer.alloc(0);
    const hello = Buffer.from('hello\n');
    for (const [name, algo] of [
      ['md5sum', 'md5'],
      ['sha1sum', 'sha1'],
      ['sha256sum', 'sha256'],
    ] as const) {
      expect(await exec(name, none)).toEqual({ code: 0, stderr: '', stdout: `${digest(algo, none)}  -\n` });
      expect(await exec(`${name} -`, hello)).toEqual({ code: 0, stderr: '', stdout: `${digest(algo, hello)}  -\n` });
    }
    expect(await exec('md5sum', randomBytes(1024 * 1024 + 1))).toEqual({ code: 1, stderr: 'md5sum: -: File too large\n', stdout: '' });
    // And the gateway goes on answering.
    expect((await exec('sha256sum /big.bin')).stdout).toBe(`${digest('sha256', big)}  /big.bin\n`);
  });

  it('one connection runs at most 8 checksum commands at once; the one past them is refused, the others answer', async () => {
    // Eight wait for input that has not ended; the ninth finds no room.
    const waiting: ssh2.ClientChannel[] = [];
    const answers = Array.from(
      { length: 8 },
      (_, i) =>
        new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
          client.exec('sha256sum', (err, channel) => {
            if (err) return reject(err);
            waiting[i] = channel;
            let stdout = '';
            let code: number | null = null;
            channel.on('data', (d: Buffer) => (stdout += d.toString()));
            channel.on('exit', (c: number) => (code = c));
            channel.on('close', () => resolve({ code, stdout }));
          });
        }),
    );
    await vi.waitFor(() => expect(waiting.filter(Boolean)).toHaveLength(8));
    expect(await exec('sha256sum', Buffer.from('x'))).toEqual({
      code: 1,
      stdout: '',
      stderr: 'sha256sum: too many commands at once on this connection\n',
    });
    for (const channel of waiting) channel.end(Buffer.from('x'));
    for (const answer of await Promise.all(answers))
      expect(answer).toEqual({ code: 0, stdout: `${digest('sha256', Buffer.from('x'))}  -\n` });
    expect((await exec('sha256sum', Buffer.from('x'))).code).toBe(0);
  });

  it.skipIf(SKIP_SSH)("a bare md5sum from OpenSSH's ssh client, its input /dev/null", async () => {
    const md5 = await ssh(gw.alice, ['md5sum']);
    expect([md5.code, md5.stdout]).toEqual([0, `${digest('md5', Buffer.alloc(0))}  -\n`]);
  });

  it.skipIf(SKIP_RCLONE)(
    'rclone finds md5sum and sha1sum over exec: hashsum, check and sync --checksum compare digests, not sizes',
    async () => {
      const work = await mkdtemp(path.join(tmpdir(), 'capstan-rclone-sums-'));
      try {
        // A configured remote, as `rclone config` makes one: rclone saves what it detects there on first use.
        const conf = path.join(work, 'rclone.conf');
        await writeFile(conf, `[cap]\ntype = sftp\nhost = 127.0.0.1\nport = ${gw.port}\nuser = alice\nkey_file = ${gw.keyFile}\n`);
        const rclone = async (args: string[], what: string) =>
          must(
            await run('rclone', ['--config', conf, '--retries', '1', ...args], {
              env: { PATH: process.env.PATH, HOME: work },
              timeoutMs: 120_000,
            }),
            what,
          );
        const src = path.join(work, 'src');
        await mkdir(src);
        // rclone escapes a name's spaces, quotes and brackets with backslashes in the command it sends.
        const files = { 'a.bin': randomBytes(3 * CHUNK + 5), 'b.txt': Buffer.from('b\n'), "it's (a) copy & ü.txt": Buffer.from('d\n') };
        for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(src, name), bytes);
        await rclone(['copy', src, 'cap:/rc'], 'rclone copy');
        // One file first: rclone 1.60 detects lazily, and files hashed while it detects get no digest.
        expect((await rclone(['hashsum', 'md5', 'cap:/rc/b.txt'], 'rclone hashsum of one file')).stdout).toBe(
          `${digest('md5', files['b.txt'])}  b.txt\n`,
        );
        expect(await readFile(conf, 'utf8')).toMatch(/md5sum_command = md5sum/);
        const sums = (await rclone(['hashsum', 'md5', 'cap:/rc'], 'rclone hashsum')).stdout;
        expect(sums.trim().split('\n').sort()).toEqual(
          Object.entries(files)
            .map(([name, bytes]) => `${digest('md5', bytes)}  ${name}`)
            .sort(),
        );
        const check = await rclone(['check', src, 'cap:/rc'], 'rclone check');
        expect(check.stderr).toMatch(/0 differences found/);
        expect(check.stderr).not.toMatch(/could not be checked/);
        // Same size, other bytes: only a digest tells them apart.
        await writeFile(path.join(src, 'b.txt'), Buffer.from('c\n'));
        await rclone(['sync', '--checksum', src, 'cap:/rc'], 'rclone sync --checksum');
        const back = await call<Buffer>((cb) => sftp.readFile('/rc/b.txt', cb));
        expect(back.toString()).toBe('c\n');
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  );

  it('check-file-name and check-file-handle compute md5 and sha1 by reading the file', async () => {
    const raw = await RawSftp.open(client);
    await raw.init();
    const ask = async (id: number, ...fields: Buffer[]) => {
      raw.send(200, u32(id), ...fields);
      return (await raw.next())!;
    };
    const hashReply = (p: { type: number; payload: Buffer }) => {
      expect(p.type).toBe(201);
      const [reply, at] = readString(p.payload, 4);
      expect(reply.toString()).toBe('check-file');
      const [algo, off] = readString(p.payload, at);
      return [algo.toString(), p.payload.subarray(off).toString('hex')];
    };
    // The client's first known preference is honoured even when it is not recorded.
    let p = await ask(1, str('check-file-name'), str('/big.bin'), str('md5,sha256'), u64(0), u64(0), u32(0));
    expect(hashReply(p)).toEqual(['md5', digest('md5', big)]);
    p = await ask(2, str('check-file-name'), str('/big.bin'), str('sha256'), u64(0), u64(0), u32(0));
    expect(hashReply(p)).toEqual(['sha256', digest('sha256', big)]);
    raw.send(3, u32(3), str('/big.bin'), u32(1), u32(0));
    const opened = (await raw.next())!;
    expect(opened.type).toBe(102);
    const [handle] = readString(opened.payload, 4);
    p = await ask(4, str('check-file-handle'), str(handle), str('sha1'), u64(0), u64(0), u32(0));
    expect(hashReply(p)).toEqual(['sha1', digest('sha1', big)]);
    raw.channel.close();
  });
});
