import { connect, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { Defender, DEFAULT_DEFENDER_OPTIONS } from '../../src/defender/index.js';
import { createLogger } from '../../src/log.js';
import { MAX_HEADER_BYTES, parseProxyHeader } from '../../src/sftp/proxy-protocol.js';
import { bannerSent } from '../helpers/ssh-banner.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 PROXY header as HAProxy's send-proxy-v2 writes it for a TCP client. */
function v2(src: string, srcPort: number, opts: { command?: number; tlv?: Buffer } = {}): Buffer {
  const v6 = src.includes(':');
  const addr = (a: string): Buffer => {
    if (!v6) return Buffer.from(a.split('.').map(Number));
    const b = Buffer.alloc(16);
    const [head, tail] = a.split('::') as [string, string | undefined];
    const left = head === '' ? [] : head.split(':');
    const right = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups = [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
    for (const [i, g] of groups.entries()) b.writeUInt16BE(parseInt(g, 16), i * 2);
    return b;
  };
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(srcPort, 0);
  ports.writeUInt16BE(2222, 2);
  const body = Buffer.concat([addr(src), addr(v6 ? '::1' : '127.0.0.1'), ports, opts.tlv ?? Buffer.alloc(0)]);
  const head = Buffer.from([0x20 | (opts.command ?? 1), v6 ? 0x21 : 0x11, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

describe('parseProxyHeader', () => {
  it('reads v1 TCP4, TCP6 and UNKNOWN lines, and where the header ends', () => {
    const line = Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 51234 2222\r\nSSH-2.0-x\r\n', 'latin1');
    expect(parseProxyHeader(line)).toEqual({
      status: 'ok',
      peer: { kind: 'client', address: '203.0.113.7', port: 51234 },
      headerLength: 45,
    });
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n'))).toMatchObject({
      peer: { kind: 'client', address: '2001:db8::7', port: 1 },
    });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toMatchObject({ status: 'ok', peer: { kind: 'local' }, headerLength: 15 });
  });

  it('reads v2 for IPv4 and IPv6, skips TLVs, and keeps the connection address for LOCAL', () => {
    const four = Buffer.concat([v2('203.0.113.7', 40000, { tlv: Buffer.from([0x04, 0x00, 0x01, 0x00]) }), Buffer.from('SSH-2.0-x')]);
    expect(parseProxyHeader(four)).toEqual({
      status: 'ok',
      peer: { kind: 'client', address: '203.0.113.7', port: 40000 },
      headerLength: 32,
    });
    expect(parseProxyHeader(v2('2001:db8::7', 7))).toMatchObject({
      peer: { kind: 'client', address: '2001:db8:0:0:0:0:0:7', port: 7 },
      headerLength: 52,
    });
    expect(parseProxyHeader(v2('203.0.113.7', 1, { command: 0 }))).toMatchObject({ status: 'ok', peer: { kind: 'local' } });
  });

  it('waits for a header cut anywhere, and refuses anything that is not one', () => {
    for (const whole of [v2('203.0.113.7', 1), Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\n')]) {
      for (let n = 0; n < whole.length; n++) expect(parseProxyHeader(whole.subarray(0, n)).status, `${n} bytes`).toBe('incomplete');
    }
    const bad = [
      'SSH-2.0-OpenSSH_9.2\r\n',
      'PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n',
      'PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n',
      'PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n',
      'PROXY TCP4 203.0.113.777 192.0.2.1 1 2\r\n',
      'PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`,
    ];
    for (const text of bad) expect(parseProxyHeader(Buffer.from(text, 'latin1')).status, text).toBe('invalid');
    const v3 = v2('203.0.113.7', 1);
    v3[12] = 0x31;
    expect(parseProxyHeader(v3).status).toBe('invalid');
    const huge = v2('203.0.113.7', 1);
    huge.writeUInt16BE(MAX_HEADER_BYTES, 14);
    expect(parseProxyHeader(huge).status).toBe('invalid');
  });
});

describe('a gateway behind a PROXY protocol balancer', () => {
  const gateways: Gateway[] = [];
  afterEach(async () => {
    for (const g of gateways.splice(0)) await g.close();
  });

  async function gateway(from: string[]) {
    const events: Record<string, unknown>[] = [];
    const logger = createLogger('debug', { write: (s: string) => void events.push(JSON.parse(s) as Record<string, unknown>) });
    const defender = new Defender({ ...DEFAULT_DEFENDER_OPTIONS, threshold: 2, logger });
    const g = await startGateway({
      server: { defender, proxyProtocolFrom: from, isKnownUser: (u) => u === 'alice', limits: { loginGraceMs: 3_000 } },
    });
    gateways.push(g);
    return { g, defender };
  }

  /** Opens a TCP connection, writes `header`, then lets ssh2 log in over it. */
  function loginVia(port: number, header: Buffer, password: string): Promise<'ok' | 'refused' | 'closed'> {
    return new Promise((resolve) => {
      const socket: Socket = connect({ host: '127.0.0.1', port }, () => {
        socket.write(header);
        const client = new ssh2.Client();
        client.once('ready', () => {
          client.end();
          resolve('ok');
        });
        client.once('error', (err: Error & { level?: string }) => resolve(err.level === 'client-authentication' ? 'refused' : 'closed'));
        client.once('close', () => resolve('closed'));
        client.connect({ sock: socket, username: 'alice', password, readyTimeout: 5_000 });
      });
      socket.on('error', () => resolve('closed'));
    });
  }

  it('scores, bans and logs the client the header names, before its banner, and serves the others', async () => {
    const { g, defender } = await gateway(['127.0.0.0/8']);
    expect(await loginVia(g.port, v2('203.0.113.7', 40001), g.password)).toBe('ok');
    expect(g.logs.find((l) => l.event === 'login')).toMatchObject({ remoteAddress: '203.0.113.7' });
    expect(await loginVia(g.port, v2('203.0.113.66', 40002), 'wrong')).toBe('refused');
    expect(await loginVia(g.port, Buffer.from('PROXY TCP4 203.0.113.66 127.0.0.1 40003 22\r\n'), 'wrong')).toBe('refused');
    expect(defender.bans().map((b) => b.address)).toEqual(['203.0.113.66']);
    expect(g.logs.filter((l) => l.event === 'auth_failed').map((l) => [l.remoteAddress, l.remotePort])).toEqual([
      ['203.0.113.66', 40002],
      ['203.0.113.66', 40003],
    ]);
    // The banned client is closed before the banner, even with the right password; the balancer's other clients are not.
    expect(await loginVia(g.port, v2('203.0.113.66', 40004), g.password)).toBe('closed');
    expect(await loginVia(g.port, v2('203.0.113.8', 40005), g.password)).toBe('ok');
    // A LOCAL header (the balancer's own check) is the balancer itself.
    expect(await loginVia(g.port, v2('203.0.113.66', 1, { command: 0 }), g.password)).toBe('ok');
  });

  /** What a client that skips the balancer does: sends its SSH identification at once. Resolves with whether a banner came back. */
  function directSshClient(port: number, localAddress?: string): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) }, () =>
        socket.write('SSH-2.0-OpenSSH_9.2\r\n'),
      );
      socket.on('error', () => {});
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString('latin1').startsWith('SSH-2.0-'));
      });
      socket.once('close', () => resolve(false));
    });
  }

  it('closes a listed balancer connection without a valid header; an unlisted address never gets to claim one', async () => {
    const listed = await gateway(['127.0.0.1']);
    expect(await directSshClient(listed.g.port)).toBe(false);
    expect(listed.g.logs.find((l) => l.event === 'connection_refused')).toMatchObject({
      reason: 'proxy_protocol',
      remoteAddress: '127.0.0.1',
    });
    // Silent: closed after the login grace time.
    expect(await bannerSent(listed.g.port)).toBe(false);
    expect(await loginVia(listed.g.port, Buffer.from('PROXY TCP4 nonsense\r\n'), listed.g.password)).toBe('closed');
    // From 127.0.0.2 (not listed) the header is just bytes before SSH: the session fails, nothing is believed.
    expect(await directSshClient(listed.g.port, '127.0.0.2')).toBe(true);
    const off = await gateway([]);
    expect(await loginVia(off.g.port, v2('203.0.113.7', 1), off.g.password)).toBe('closed');
    expect(off.g.logs.some((l) => l.remoteAddress === '203.0.113.7')).toBe(false);
  });
});
