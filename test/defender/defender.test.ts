import { describe, expect, it } from 'vitest';
import { AddressList, clientKey, normalizeAddress } from '../../src/defender/address.js';
import { Defender, DEFAULT_DEFENDER_OPTIONS, type DefenderOptions } from '../../src/defender/index.js';
import { createLogger } from '../../src/log.js';

function make(over: Partial<DefenderOptions> = {}) {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('debug', { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const clock = { t: 1_000_000 };
  const defender = new Defender({ ...DEFAULT_DEFENDER_OPTIONS, logger, now: () => clock.t, ...over });
  return { defender, logs, clock };
}

describe('addresses', () => {
  it('unwraps IPv4-mapped IPv6 and expands IPv6', () => {
    expect(normalizeAddress('::ffff:203.0.113.7')).toEqual({ family: 'ipv4', address: '203.0.113.7' });
    expect(normalizeAddress('0:0:0:0:0:ffff:cb00:7107')).toEqual({ family: 'ipv4', address: '203.0.113.7' });
    expect(normalizeAddress('2001:DB8::1')!.address).toBe('2001:0db8:0000:0000:0000:0000:0000:0001');
    expect(normalizeAddress('fe80::1%eth0')!.family).toBe('ipv6');
    expect(normalizeAddress('not an ip')).toBeUndefined();
  });

  it('keys IPv6 clients by their /64, IPv4 by address', () => {
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe(clientKey('2001:db8:1:2:bbbb::9'));
    expect(clientKey('2001:db8:1:2::1')).not.toBe(clientKey('2001:db8:1:3::1'));
    expect(clientKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(clientKey('2001:db8::1', 128)).toBe('2001:0db8:0000:0000:0000:0000:0000:0001');
  });

  it('matches addresses and CIDRs of both families, mapped IPv4 included', () => {
    const list = new AddressList(['198.51.100.0/24', '203.0.113.7', '2001:db8::/32']);
    expect(list.has('198.51.100.200')).toBe(true);
    expect(list.has('::ffff:198.51.100.1')).toBe(true);
    expect(list.has('203.0.113.7')).toBe(true);
    expect(list.has('203.0.113.8')).toBe(false);
    expect(list.has('2001:db8:ffff::1')).toBe(true);
    expect(list.has('2001:db9::1')).toBe(false);
    expect(new AddressList(['::ffff:10.0.0.0/104']).has('10.200.0.1')).toBe(true);
    expect(new AddressList(['::ffff:10.0.0.0/104']).has('11.0.0.1')).toBe(false);
    expect(() => new AddressList(['10.0.0.0/33'])).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
    expect(() => new AddressList(['example.com'])).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
  });
});

describe('Defender', () => {
  it('bans at the threshold, an unknown user scoring more than a wrong password', () => {
    const { defender, logs } = make({ threshold: 6 });
    for (let i = 0; i < 5; i++) expect(defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: true });
    expect(defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: false, reason: 'banned' });
    expect(defender.admit('::ffff:10.0.0.1')).toEqual({ ok: false, reason: 'banned' });
    expect(defender.admit('10.0.0.2')).toEqual({ ok: true });
    // Unknown users (2 each): three reach 6.
    expect(defender.recordFailure('10.0.0.3', 'unknown_user')).toBe(false);
    expect(defender.recordFailure('10.0.0.3', 'unknown_user')).toBe(false);
    expect(defender.recordFailure('10.0.0.3', 'unknown_user')).toBe(true);
    // Refused names (3 each): two reach 6.
    defender.recordFailure('10.0.0.4', 'refused_user');
    expect(defender.recordFailure('10.0.0.4', 'refused_user')).toBe(true);
    const bans = logs.filter((l) => l.event === 'ban');
    expect(bans.map((l) => l.remoteAddress)).toEqual(['10.0.0.1', '10.0.0.3', '10.0.0.4']);
    expect(bans[0]).toMatchObject({ level: 40, banSeconds: 1800, offences: 1 });
  });

  it('forgets scores older than the observation window', () => {
    const { defender, clock } = make({ threshold: 3, observationMs: 60_000 });
    defender.recordFailure('10.0.0.1', 'wrong_credential');
    defender.recordFailure('10.0.0.1', 'wrong_credential');
    clock.t += 61_000;
    expect(defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
  });

  it('doubles the ban on every repeat offence up to the maximum, and logs its end', () => {
    const { defender, clock, logs } = make({ threshold: 1, banMs: 60_000, maxBanMs: 200_000 });
    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
      const until = defender.bans()[0]!.until.getTime();
      lengths.push(until - clock.t);
      clock.t = until - 1;
      expect(defender.isBanned('10.0.0.1')).toBe(true);
      clock.t = until;
      expect(defender.isBanned('10.0.0.1')).toBe(false);
    }
    expect(lengths).toEqual([60_000, 120_000, 200_000, 200_000]);
    expect(logs.filter((l) => l.event === 'unban' && l.reason === 'expired')).toHaveLength(4);
    // Quiet for longer than the longest ban: the next ban starts small again.
    clock.t += 200_001;
    defender.recordFailure('10.0.0.1', 'wrong_credential');
    expect(defender.bans()[0]!.until.getTime() - clock.t).toBe(60_000);
  });

  it('never scores an allow-listed address and always refuses a deny-listed one', () => {
    const { defender } = make({ threshold: 1, allow: ['192.0.2.0/24', '2001:db8::/48'], deny: ['198.51.100.0/24', '192.0.2.9'] });
    expect(defender.recordFailure('192.0.2.5', 'refused_user')).toBe(false);
    expect(defender.admit('192.0.2.5')).toEqual({ ok: true });
    expect(defender.admit('192.0.2.9')).toEqual({ ok: true }); // allow wins
    expect(defender.recordFailure('2001:db8:0:1::5', 'unknown_user')).toBe(false);
    expect(defender.admit('198.51.100.77')).toEqual({ ok: false, reason: 'denied' });
    expect(defender.admit('::ffff:198.51.100.77')).toEqual({ ok: false, reason: 'denied' });
  });

  it('bans a whole IPv6 /64', () => {
    const { defender } = make({ threshold: 2 });
    defender.recordFailure('2001:db8:1:2::10', 'wrong_credential');
    defender.recordFailure('2001:db8:1:2::20', 'wrong_credential');
    expect(defender.admit('2001:db8:1:2:ffff::1')).toEqual({ ok: false, reason: 'banned' });
    expect(defender.admit('2001:db8:1:3::1')).toEqual({ ok: true });
  });

  it('refuses the listed user names case-insensitively', () => {
    const { defender } = make();
    for (const u of ['root', 'ROOT', 'Admin', 'ec2-user', 'postgres']) expect(defender.isRefusedUser(u)).toBe(true);
    expect(defender.isRefusedUser('alice')).toBe(false);
    expect(make({ refusedUsers: [] }).defender.isRefusedUser('root')).toBe(false);
  });

  it('does nothing when disabled, except the lists', () => {
    const { defender } = make({ enabled: false, threshold: 1, deny: ['10.9.9.9'] });
    expect(defender.recordFailure('10.0.0.1', 'refused_user')).toBe(false);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: true });
    expect(defender.admit('10.9.9.9')).toEqual({ ok: false, reason: 'denied' });
  });

  it('keeps at most maxEntries addresses, evicting the least recently seen non-banned one first', () => {
    const { defender } = make({ threshold: 3, maxEntries: 3 });
    defender.recordFailure('10.0.0.1', 'refused_user'); // banned (3)
    defender.recordFailure('10.0.0.2', 'wrong_credential');
    defender.recordFailure('10.0.0.3', 'wrong_credential');
    defender.recordFailure('10.0.0.2', 'wrong_credential'); // .2 now more recent than .3
    defender.recordFailure('10.0.0.4', 'wrong_credential'); // evicts .3
    expect(defender.size).toBe(3);
    expect(defender.isBanned('10.0.0.1')).toBe(true);
    expect(defender.recordFailure('10.0.0.2', 'wrong_credential')).toBe(true); // .2 kept its score
    // A flood of fresh addresses never grows the table past its bound.
    for (let i = 0; i < 10_000; i++) defender.recordFailure(`10.1.${i >> 8}.${i & 255}`, 'wrong_credential');
    expect(defender.size).toBe(3);
  });

  it('lets an operator lift a ban', () => {
    const { defender, logs } = make({ threshold: 1 });
    defender.recordFailure('10.0.0.1', 'wrong_credential');
    expect(defender.unban('10.0.0.1')).toBe(true);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: true });
    expect(logs.some((l) => l.event === 'unban' && l.reason === 'operator')).toBe(true);
  });
});
