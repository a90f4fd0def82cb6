import { describe, expect, it } from 'vitest';
import { AddressList, clientKey, normalizeAddress } from '../../src/defender/address.js';
import { Defender, DEFAULT_DEFENDER_OPTIONS, MemoryDefenderStore, type DefenderOptions } from '../../src/defender/index.js';
import { scoreFailure, scoreFailures, type ClientRecord, type DefenderStore } from '../../src/defender/index.js';
import { TransientError, type AbortOptions } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';

function make(over: Partial<DefenderOptions> = {}) {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger('debug', { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const clock = { t: 1_000_000 };
  const store = new MemoryDefenderStore({ maxEntries: over.maxEntries ?? DEFAULT_DEFENDER_OPTIONS.maxEntries });
  const defender = new Defender({ ...DEFAULT_DEFENDER_OPTIONS, logger, now: () => clock.t, ...over }, store);
  return { defender, logs, clock, store };
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

describe('scoreFailures', () => {
  const policy = { threshold: 3, observationMs: 1000, banMs: 60_000, maxBanMs: 120_000, banGrowth: 2 };
  it('scores a batch as one failure after another, and stops at the ban', () => {
    const batch = [1, 2, 3, 4].map((i) => ({ at: 10_000 + i, points: 1 }));
    const one = batch.reduce<ClientRecord | undefined>((r, f) => {
      const out = scoreFailure(r, f.points, f.at, policy);
      return out.alreadyBanned ? r : out.record;
    }, undefined);
    const all = scoreFailures(undefined, batch, policy);
    expect(all).toMatchObject({ banned: true, banMs: 60_000, alreadyBanned: false });
    expect(all.record).toEqual(one);
    expect(all.record.bannedUntil).toBe(10_003 + 60_000);
    expect(scoreFailures(all.record, batch, policy)).toMatchObject({ alreadyBanned: true, banned: false, record: all.record });
  });
});

describe('Defender', () => {
  it('bans at the threshold, an unknown user scoring more than a wrong password', async () => {
    const { defender, logs } = make({ threshold: 6 });
    for (let i = 0; i < 5; i++) expect(await defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: true });
    expect(await defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: false, reason: 'banned' });
    expect(defender.admit('::ffff:10.0.0.1')).toEqual({ ok: false, reason: 'banned' });
    expect(defender.admit('10.0.0.2')).toEqual({ ok: true });
    // Unknown users (2 each): three reach 6.
    expect(await defender.recordFailure('10.0.0.3', 'unknown_user')).toBe(false);
    expect(await defender.recordFailure('10.0.0.3', 'unknown_user')).toBe(false);
    expect(await defender.recordFailure('10.0.0.3', 'unknown_user')).toBe(true);
    // Refused names (3 each): two reach 6.
    await defender.recordFailure('10.0.0.4', 'refused_user');
    expect(await defender.recordFailure('10.0.0.4', 'refused_user')).toBe(true);
    const bans = logs.filter((l) => l.event === 'ban');
    expect(bans.map((l) => l.remoteAddress)).toEqual(['10.0.0.1', '10.0.0.3', '10.0.0.4']);
    expect(bans[0]).toMatchObject({ level: 40, banSeconds: 1800, offences: 1 });
  });

  it('forgets scores older than the observation window', async () => {
    const { defender, clock } = make({ threshold: 3, observationMs: 60_000 });
    await defender.recordFailure('10.0.0.1', 'wrong_credential');
    await defender.recordFailure('10.0.0.1', 'wrong_credential');
    clock.t += 61_000;
    expect(await defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(await defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(await defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
  });

  it('doubles the ban on every repeat offence up to the maximum, and logs its end', async () => {
    const { defender, clock, logs } = make({ threshold: 1, banMs: 60_000, maxBanMs: 200_000 });
    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      expect(await defender.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
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
    await defender.recordFailure('10.0.0.1', 'wrong_credential');
    expect(defender.bans()[0]!.until.getTime() - clock.t).toBe(60_000);
  });

  it('never scores an allow-listed address and always refuses a deny-listed one', async () => {
    const { defender } = make({ threshold: 1, allow: ['192.0.2.0/24', '2001:db8::/48'], deny: ['198.51.100.0/24', '192.0.2.9'] });
    expect(await defender.recordFailure('192.0.2.5', 'refused_user')).toBe(false);
    expect(defender.admit('192.0.2.5')).toEqual({ ok: true });
    expect(defender.admit('192.0.2.9')).toEqual({ ok: true }); // allow wins
    expect(await defender.recordFailure('2001:db8:0:1::5', 'unknown_user')).toBe(false);
    expect(defender.admit('198.51.100.77')).toEqual({ ok: false, reason: 'denied' });
    expect(defender.admit('::ffff:198.51.100.77')).toEqual({ ok: false, reason: 'denied' });
  });

  it('bans a whole IPv6 /64', async () => {
    const { defender } = make({ threshold: 2 });
    await defender.recordFailure('2001:db8:1:2::10', 'wrong_credential');
    await defender.recordFailure('2001:db8:1:2::20', 'wrong_credential');
    expect(defender.admit('2001:db8:1:2:ffff::1')).toEqual({ ok: false, reason: 'banned' });
    expect(defender.admit('2001:db8:1:3::1')).toEqual({ ok: true });
  });

  it('refuses the listed user names case-insensitively', () => {
    const { defender } = make();
    for (const u of ['root', 'ROOT', 'Admin', 'ec2-user', 'postgres']) expect(defender.isRefusedUser(u)).toBe(true);
    expect(defender.isRefusedUser('alice')).toBe(false);
    expect(make({ refusedUsers: [] }).defender.isRefusedUser('root')).toBe(false);
  });

  it('does nothing when disabled, except the lists', async () => {
    const { defender } = make({ enabled: false, threshold: 1, deny: ['10.9.9.9'] });
    expect(await defender.recordFailure('10.0.0.1', 'refused_user')).toBe(false);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: true });
    expect(defender.admit('10.9.9.9')).toEqual({ ok: false, reason: 'denied' });
  });

  it('keeps at most maxEntries addresses, evicting the least recently seen non-banned one first', async () => {
    const { defender, store } = make({ threshold: 3, maxEntries: 3 });
    await defender.recordFailure('10.0.0.1', 'refused_user'); // banned (3)
    await defender.recordFailure('10.0.0.2', 'wrong_credential');
    await defender.recordFailure('10.0.0.3', 'wrong_credential');
    await defender.recordFailure('10.0.0.2', 'wrong_credential'); // .2 now more recent than .3
    await defender.recordFailure('10.0.0.4', 'wrong_credential'); // evicts .3
    expect(await store.size()).toBe(3);
    expect(defender.isBanned('10.0.0.1')).toBe(true);
    expect(await defender.recordFailure('10.0.0.2', 'wrong_credential')).toBe(true); // .2 kept its score
    // A flood of fresh addresses never grows the table past its bound.
    for (let i = 0; i < 10_000; i++) await defender.recordFailure(`10.1.${i >> 8}.${i & 255}`, 'wrong_credential');
    expect(await store.size()).toBe(3);
  });

  it('lets an operator lift a ban', async () => {
    const { defender, logs } = make({ threshold: 1 });
    await defender.recordFailure('10.0.0.1', 'wrong_credential');
    expect(await defender.unban('10.0.0.1')).toBe(true);
    expect(defender.admit('10.0.0.1')).toEqual({ ok: true });
    expect(logs.some((l) => l.event === 'unban' && l.reason === 'operator')).toBe(true);
  });
});

/** A store that can be made to fail (TransientError) or hang, for fault injection around a real MemoryDefenderStore. */
class FaultyStore implements DefenderStore {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  calls = 0;
  constructor(readonly inner: DefenderStore) {}
  async #gate(): Promise<void> {
    this.calls++;
    if (this.mode === 'fail') throw new TransientError('defender store down');
    if (this.mode === 'hang') await new Promise(() => undefined);
  }
  async get(key: string, o?: AbortOptions) {
    await this.#gate();
    return this.inner.get(key, o);
  }
  async put(key: string, v: number | undefined, r: ClientRecord, o?: AbortOptions) {
    await this.#gate();
    return this.inner.put(key, v, r, o);
  }
  async delete(key: string, o?: AbortOptions) {
    await this.#gate();
    return this.inner.delete(key, o);
  }
  async bans(now: number, limit: number, o?: AbortOptions) {
    await this.#gate();
    return this.inner.bans(now, limit, o);
  }
  async generation(o?: AbortOptions) {
    await this.#gate();
    return this.inner.generation(o);
  }
  async sweep(now: number, max: number, o?: AbortOptions) {
    await this.#gate();
    return this.inner.sweep(now, max, o);
  }
  async size(o?: AbortOptions) {
    return this.inner.size(o);
  }
  async close() {}
}

describe('Defender on a shared store', () => {
  function gatewayPair(over: Partial<DefenderOptions> = {}) {
    const logs: Record<string, unknown>[] = [];
    const logger = createLogger('debug', { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
    const clock = { t: 1_000_000 };
    const store = new FaultyStore(new MemoryDefenderStore());
    const opts = { ...DEFAULT_DEFENDER_OPTIONS, logger, now: () => clock.t, storeTimeoutMs: 200, ...over };
    return { a: new Defender(opts, store), b: new Defender(opts, store), c: new Defender(opts, store), store, clock, logs, opts };
  }

  it('counts failures at every gateway against one threshold', async () => {
    const { a, b, c } = gatewayPair({ threshold: 6 });
    // Two failures at each of three gateways: the sixth bans, wherever it lands.
    for (const d of [a, b, c, a, b]) expect(await d.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(await c.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
    expect(c.isBanned('10.0.0.1')).toBe(true);
    // The others refuse it once they have re-read the ban list.
    expect(a.isBanned('10.0.0.1')).toBe(false);
    await a.refresh();
    await b.refresh();
    expect(a.admit('10.0.0.1')).toEqual({ ok: false, reason: 'banned' });
    expect(b.admit('10.0.0.1')).toEqual({ ok: false, reason: 'banned' });
    expect(b.admit('10.0.0.2')).toEqual({ ok: true });
  });

  it('racing failures at several gateways are each counted once, a burst in a few writes', async () => {
    const { a, b, c, store } = gatewayPair({ threshold: 1000 });
    await Promise.all(Array.from({ length: 150 }, (_, i) => [a, b, c][i % 3]!.recordFailure('10.0.0.9', 'wrong_credential')));
    const stored = await store.get('10.0.0.9');
    expect(stored?.record.events).toHaveLength(150);
    // Each gateway writes its first failure alone and the other 49 together.
    expect(stored?.version).toBe(6);
    expect(a.degraded || b.degraded || c.degraded).toBe(false);
  });

  it('a burst that crosses the threshold bans once, and every failure in it hears of the ban', async () => {
    const { a, logs } = gatewayPair({ threshold: 10 });
    const results = await Promise.all(Array.from({ length: 25 }, () => a.recordFailure('10.0.0.10', 'wrong_credential')));
    expect(results.filter((r) => r)).toHaveLength(24); // the first was scored alone, below the threshold
    expect(logs.filter((l) => l.event === 'ban')).toHaveLength(1);
  });

  it('a gateway that learns of a ban while scoring reports it at once', async () => {
    const { a, b } = gatewayPair({ threshold: 2 });
    await a.recordFailure('10.0.0.1', 'wrong_credential');
    expect(await a.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
    // b has not refreshed, but its next score reads the banned record.
    expect(await b.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
    expect(b.isBanned('10.0.0.1')).toBe(true);
  });

  it('a restart does not forgive: a new defender on the same store enforces the ban from start()', async () => {
    const { a, store, opts } = gatewayPair({ threshold: 1 });
    await a.recordFailure('10.0.0.1', 'refused_user');
    const restarted = new Defender(opts, store);
    await restarted.start();
    try {
      expect(restarted.isBanned('10.0.0.1')).toBe(true);
    } finally {
      await restarted.close();
    }
  });

  it('an unban at one gateway is lifted at the others at their next refresh', async () => {
    const { a, b, logs } = gatewayPair({ threshold: 1 });
    await a.recordFailure('10.0.0.1', 'refused_user');
    await b.refresh();
    expect(b.isBanned('10.0.0.1')).toBe(true);
    expect(await a.unban('10.0.0.1')).toBe(true);
    await b.refresh();
    expect(b.isBanned('10.0.0.1')).toBe(false);
    expect(logs.filter((l) => l.event === 'unban').map((l) => l.reason)).toEqual(['operator', 'lifted']);
  });

  it('fails open to the local view when the store fails or hangs, logging once, and recovers', async () => {
    const { a, b, store, logs } = gatewayPair({ threshold: 3 });
    await a.recordFailure('10.0.0.5', 'refused_user'); // banned before the outage
    await b.refresh();
    await a.recordFailure('10.0.0.1', 'wrong_credential'); // one point in the shared store, mirrored in a's local view
    for (const mode of ['fail', 'hang'] as const) {
      store.mode = mode;
      // Nothing throws; nobody new is refused; the old ban still holds.
      await b.refresh();
      expect(b.admit('10.0.0.7')).toEqual({ ok: true });
      expect(b.admit('10.0.0.5')).toEqual({ ok: false, reason: 'banned' });
      expect(await b.recordFailure('10.0.0.8', 'wrong_credential')).toBe(false);
      expect(b.degraded).toBe(true);
    }
    // a keeps counting from what it last knew: one more point before, two during the outage.
    expect(await a.recordFailure('10.0.0.1', 'wrong_credential')).toBe(false);
    expect(await a.recordFailure('10.0.0.1', 'wrong_credential')).toBe(true);
    expect(a.isBanned('10.0.0.1')).toBe(true);
    expect(logs.filter((l) => l.event === 'ban' && l.remoteAddress === '10.0.0.1')[0]).toMatchObject({ localOnly: true });
    expect(logs.filter((l) => l.event === 'defender_store_failed')).toHaveLength(2); // once per gateway
    store.mode = 'ok';
    await a.refresh();
    await b.refresh();
    expect(a.degraded).toBe(false);
    expect(logs.filter((l) => l.event === 'defender_store_recovered')).toHaveLength(2);
    // The local ban holds at a until it ends; the shared store never heard of it.
    expect(a.isBanned('10.0.0.1')).toBe(true);
    expect(b.isBanned('10.0.0.1')).toBe(false);
  });
});
