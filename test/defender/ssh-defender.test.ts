import { networkInterfaces } from 'node:os';
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { Defender, DEFAULT_DEFENDER_OPTIONS, type DefenderOptions } from '../../src/defender/index.js';
import { createLogger } from '../../src/log.js';
import { bannerSent } from '../helpers/ssh-banner.js';
import { connectSsh2, sftpOf, startGateway, type Gateway } from '../sftp/gateway-fixture.js';

/**
 * The defender in a running gateway, against ssh2's client (password logins
 * one per connection, as a scanner makes them): scores, bans enforced
 * before the SSH banner, refused names, the failure delay, the lists.
 */

const gateways: Gateway[] = [];
afterEach(async () => {
  for (const g of gateways.splice(0)) await g.close();
});

const hasIPv6Loopback = Object.values(networkInterfaces())
  .flat()
  .some((i) => i?.address === '::1');

async function gateway(
  over: Partial<DefenderOptions>,
  delayMs = 0,
  host?: string,
): Promise<{ g: Gateway; defender: Defender; events: Record<string, unknown>[] }> {
  const events: Record<string, unknown>[] = [];
  const logger = createLogger('debug', { write: (s: string) => void events.push(JSON.parse(s) as Record<string, unknown>) });
  const defender = new Defender({ ...DEFAULT_DEFENDER_OPTIONS, logger, ...over });
  const g = await startGateway({
    server: { defender, authFailureDelayMs: delayMs, isKnownUser: (u) => u === 'alice' || u === 'reader', ...(host ? { host } : {}) },
  });
  gateways.push(g);
  return { g, defender, events };
}

/** One password attempt on a fresh connection: 'ok', 'refused' (auth failed) or 'closed' (never got to auth). */
async function attempt(port: number, user: string, password: string): Promise<'ok' | 'refused' | 'closed'> {
  try {
    const client = await connectSsh2(port, user, { password });
    client.end();
    return 'ok';
  } catch (err) {
    return (err as { level?: string }).level === 'client-authentication' ? 'refused' : 'closed';
  }
}

describe('defender in the gateway', () => {
  it('bans after the threshold and then closes connections before the SSH banner', async () => {
    const { g, events } = await gateway({ threshold: 3 });
    expect(await attempt(g.port, 'alice', 'wrong-1')).toBe('refused');
    expect(await attempt(g.port, 'alice', 'wrong-2')).toBe('refused');
    expect(await bannerSent(g.port)).toBe(true);
    expect(await attempt(g.port, 'alice', 'wrong-3')).toBe('refused');
    expect(events.some((l) => l.event === 'ban' && l.remoteAddress === '127.0.0.1' && l.level === 40 && l.component === 'defender')).toBe(
      true,
    );
    expect(await bannerSent(g.port)).toBe(false);
    // Even the right password gets nowhere now.
    expect(await attempt(g.port, 'alice', g.password)).toBe('closed');
    // The auth_failed lines fail2ban reads are unchanged.
    expect(g.logs.filter((l) => l.event === 'auth_failed')).toHaveLength(3);
  });

  it('scores an unknown user more than a wrong password for a known one', async () => {
    const { g, defender } = await gateway({ threshold: 4 });
    expect(await attempt(g.port, 'alice', 'nope')).toBe('refused');
    expect(await attempt(g.port, 'alice', 'nope')).toBe('refused');
    expect(await attempt(g.port, 'alice', 'nope')).toBe('refused');
    expect(defender.bans()).toHaveLength(0);
    await defender.unban('127.0.0.1');
    expect(await attempt(g.port, 'mallory', 'nope')).toBe('refused');
    expect(await attempt(g.port, 'mallory', 'nope')).toBe('refused');
    expect(defender.bans()).toHaveLength(1);
  });

  it('refuses listed names at once without asking the authenticator, and scores them', async () => {
    const { g, defender } = await gateway({ threshold: 6 });
    expect(await attempt(g.port, 'root', 'toor')).toBe('refused');
    expect(await attempt(g.port, 'Admin', 'admin')).toBe('refused');
    // The authenticator logs every password it checks; it was never asked.
    expect(g.logs.some((l) => l.component === 'auth' && (l.user === 'root' || l.user === 'Admin'))).toBe(false);
    expect(g.logs.filter((l) => l.event === 'auth_failed').map((l) => l.user)).toEqual(['root', 'Admin']);
    expect(defender.bans()).toHaveLength(1);
  });

  it('delays a refused password without holding up other clients', async () => {
    const { g } = await gateway({ threshold: 100 }, 1500);
    const started = Date.now();
    const failing = attempt(g.port, 'alice', 'wrong');
    await new Promise((r) => setTimeout(r, 100));
    const other = await connectSsh2(g.port, 'alice', { password: g.password });
    const otherMs = Date.now() - started;
    await sftpOf(other);
    other.end();
    expect(await failing).toBe('refused');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(otherMs).toBeLessThan(1400);
  });

  it('a ban made elsewhere ends a connection still authenticating', async () => {
    const { g, defender } = await gateway({ threshold: 50 });
    const closed = new Promise<string>((resolve) => {
      const client = new ssh2.Client();
      client.on('error', () => resolve('error'));
      client.on('close', () => resolve('close'));
      client.on('ready', () => resolve('ready'));
      client.connect({
        host: '127.0.0.1',
        port: g.port,
        username: 'alice',
        readyTimeout: 10_000,
        // Two password tries in one connection; the ban lands between them.
        authHandler: (() => {
          let n = 0;
          return (_methods: unknown, _partial: unknown, next: (m: unknown) => void) => {
            n++;
            if (n === 1) next({ type: 'password', username: 'alice', password: 'wrong' });
            else {
              void Promise.all(Array.from({ length: 50 }, () => defender.recordFailure('127.0.0.1', 'wrong_credential'))).then(() =>
                next({ type: 'password', username: 'alice', password: g.password }),
              );
            }
          };
        })() as never,
      });
    });
    expect(await closed).not.toBe('ready');
    expect(g.logs.some((l) => l.event === 'disconnecting' && l.reason === 'address banned')).toBe(true);
  });

  it('never bans an allow-listed address; a deny-listed one never sees the banner', async () => {
    const allowed = await gateway({ threshold: 1, allow: ['127.0.0.0/8'] });
    expect(await attempt(allowed.g.port, 'root', 'x')).toBe('refused');
    expect(await attempt(allowed.g.port, 'alice', allowed.g.password)).toBe('ok');
    const denied = await gateway({ deny: ['::ffff:127.0.0.1/128', '127.0.0.1'] });
    expect(await bannerSent(denied.g.port)).toBe(false);
  });

  it('a key login is not slowed or scored by keys merely offered', async () => {
    const { g, defender } = await gateway({ threshold: 1 });
    const client = await connectSsh2(g.port, 'alice', { privateKey: await readFile(g.keyFile) });
    client.end();
    expect(defender.bans()).toHaveLength(0);
  });

  it.skipIf(!hasIPv6Loopback)('matches IPv4 clients of a dual-stack listener (::ffff:a.b.c.d) and bans IPv6 clients', async () => {
    // A [::] listener sees IPv4 clients as IPv4-mapped IPv6 addresses; an IPv4 deny rule still applies.
    const dual = await gateway({ deny: ['127.0.0.1'] }, 0, '::');
    expect(await bannerSent(dual.g.port, '127.0.0.1')).toBe(false);
    expect(await bannerSent(dual.g.port, '::1')).toBe(true);
    await dual.defender.recordFailure('::1', 'refused_user');
    for (let i = 0; i < 5; i++) await dual.defender.recordFailure('0:0:0:0:0:0:0:1', 'refused_user');
    expect(await bannerSent(dual.g.port, '::1')).toBe(false);
  });
});
