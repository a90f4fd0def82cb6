import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import type { Client, SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh2, sftpOf, startGateway, type Gateway } from '../sftp/gateway-fixture.js';
import { RawSftp, str, u32 } from '../sftp/raw-sftp.js';
import { call } from '../helpers/callback.js';

/**
 * Hostile bytes: malformed and truncated SFTP packets on a raw subsystem
 * channel, and garbage on a raw TCP socket before and after the SSH
 * identification line. The gateway must answer each SFTP packet with a
 * status (or a reply) or close just that session, never crash, and never
 * stall a healthy session running alongside (checked by a stat loop whose
 * every answer must come within HEALTHY_MAX_MS).
 *
 * CAPSTAN_FUZZ_RUNS scales the runs (CI default 25; soak 500).
 */

const RUNS = Number(process.env.CAPSTAN_FUZZ_RUNS ?? 25);
const HEALTHY_MAX_MS = 3_000;
const REPLY_TIMEOUT_MS = 5_000;

let gw: Gateway;
let key: Buffer;
let healthyClient: Client;
let healthy: SFTPWrapper;
let probing = true;
let worstProbeMs = 0;
let probes = 0;
let probeLoop: Promise<void>;
let probeError: unknown;
const KEEP = '/keep-7c1d2e9b';
const CANARY = `${KEEP}/canary`;

beforeAll(async () => {
  gw = await startGateway({ chunkSize: 4096 });
  key = await readFile(gw.keyFile);
  healthyClient = await connectSsh2(gw.port, 'alice', { privateKey: key });
  healthy = await sftpOf(healthyClient);
  // Somewhere the fuzzed sessions (same account, so they may write) will not stumble on.
  await call((cb) => healthy.mkdir(KEEP, cb));
  await call((cb) => healthy.writeFile(CANARY, 'alive', cb));
  probeLoop = (async () => {
    while (probing) {
      const t = Date.now();
      const text = (await call<Buffer>((cb) => healthy.readFile(CANARY, cb))).toString();
      if (text !== 'alive') throw new Error(`canary reads ${JSON.stringify(text)}`);
      worstProbeMs = Math.max(worstProbeMs, Date.now() - t);
      probes++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })().catch((err: unknown) => {
    probeError = err;
  });
});
afterAll(async () => {
  probing = false;
  await probeLoop;
  healthyClient?.end();
  await gw?.close();
});

/** Packet types a client may send (SFTP v3 + extended), plus server-only and unknown ones. */
const packetType = fc.oneof(
  fc.integer({ min: 1, max: 20 }),
  fc.constantFrom(200, 101, 102, 103, 104, 105, 201),
  fc.integer({ min: 0, max: 255 }),
);
const packet = fc.record({
  type: packetType,
  id: fc.integer({ min: 0, max: 0xffffffff }),
  /** Raw bytes, or a well-framed string (a path or handle) followed by random bytes, so parsing gets past the first field. */
  body: fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc
      .tuple(
        fc.oneof(fc.constantFrom('/', '/a', '/x', '..', '/uri/CS1:DIR2:x'), fc.string({ maxLength: 40 })),
        fc.uint8Array({ maxLength: 40 }),
      )
      .map(([text, tail]) => Buffer.concat([str(text), Buffer.from(tail)])),
  ),
  /** Some declared lengths lie: shorter (truncated framing) or longer (a stall) than sent. */
  lie: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.integer({ min: -8, max: 8 }), weight: 1 }),
});

describe('malformed SFTP packets', () => {
  it(
    `${RUNS} sessions of random packets: a reply or a closed session, never a crash or a stall`,
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(packet, { minLength: 1, maxLength: 6 }), async (packets) => {
          const client = await connectSsh2(gw.port, 'alice', { privateKey: key });
          client.on('error', () => undefined);
          try {
            const raw = await RawSftp.open(client);
            await raw.init();
            for (const p of packets) {
              const body = Buffer.concat([Buffer.from([p.type]), u32(p.id), p.body]);
              const declared = Math.max(0, body.length + p.lie);
              raw.sendBytes(Buffer.concat([u32(declared), body]));
              if (p.lie > 0) {
                // Declared longer than sent: the server waits for the rest; the client gives up on the session.
                break;
              }
              const outcome = await Promise.race([
                raw.closed.then(() => 'closed'),
                raw.next(REPLY_TIMEOUT_MS).then((r) => (r ? 'reply' : 'closed')),
              ]);
              expect(['reply', 'closed']).toContain(outcome);
              // Declared shorter than sent: the rest of this packet is now the start of the next frame, which
              // may declare any length and so leave the server rightly waiting for bytes that never come.
              if (outcome === 'closed' || p.lie < 0) break;
            }
          } finally {
            client.end();
          }
        }),
        { numRuns: RUNS },
      );
      expect(probeError).toBeUndefined();
      expect(probes).toBeGreaterThan(0);
      expect(worstProbeMs).toBeLessThan(HEALTHY_MAX_MS);
    },
    // Per session: an SSH handshake, then at worst one reply timeout (a loaded machine takes seconds for either).
    60_000 + RUNS * (REPLY_TIMEOUT_MS + 1_000),
  );
});

describe('garbage on the SSH port', () => {
  it(
    `${RUNS} connections of random bytes, with and without an identification line`,
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 2000 }), async (ident, bytes) => {
          await new Promise<void>((resolve, reject) => {
            const socket = connect(gw.port, '127.0.0.1');
            const timer = setTimeout(() => socket.destroy(), 300); // a server waiting for more is fine
            socket.on('error', () => undefined);
            socket.on('data', () => undefined);
            socket.on('close', () => {
              clearTimeout(timer);
              resolve();
            });
            socket.on('connect', () => {
              if (ident) socket.write('SSH-2.0-fuzz\r\n');
              socket.write(Buffer.from(bytes));
            });
            socket.setTimeout(5_000, () => reject(new Error('socket hung')));
          });
        }),
        { numRuns: RUNS },
      );
      // A fresh login works and the long-lived session never stalled.
      const client = await connectSsh2(gw.port, 'alice', { privateKey: key });
      try {
        expect((await call<Buffer>((cb) => healthy.readFile(CANARY, cb))).toString()).toBe('alive');
        await sftpOf(client);
      } finally {
        client.end();
      }
      expect(probeError).toBeUndefined();
      expect(worstProbeMs).toBeLessThan(HEALTHY_MAX_MS);
    },
    60_000 + RUNS * 2_000,
  );
});
