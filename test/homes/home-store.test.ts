import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HomeStore, homeStorageIndex, deriveHomeKeys, openHomeRecord } from '../../src/homes/index.js';
import { MemorySlotStore } from '../../src/store/memory-slot-store.js';

function homes(slots = new MemorySlotStore(), secret = randomBytes(32)) {
  let made = 0;
  const store = new HomeStore({ slots, secret, createRoot: async () => `CS1:DIR:root${made++}` });
  return { store, slots, secret, made: () => made };
}

describe('HomeStore', () => {
  it('creates a home once and finds it again', async () => {
    const { store } = homes();
    expect(await store.get('alice')).toEqual({ kind: 'absent' });
    expect(await store.openOrCreate('alice')).toEqual({ kind: 'live', cap: 'CS1:DIR:root0', created: true });
    expect(await store.openOrCreate('alice')).toEqual({ kind: 'live', cap: 'CS1:DIR:root0', created: false });
    expect(await store.openOrCreate('bob')).toMatchObject({ cap: 'CS1:DIR:root1', created: true });
  });

  it('gives racing first logins (different processes, one slot store) the same root', async () => {
    const slots = new MemorySlotStore();
    const secret = randomBytes(32);
    const gateways = Array.from({ length: 8 }, (_, i) => new HomeStore({ slots, secret, createRoot: async () => `CS1:DIR:gateway${i}` }));
    const answers = await Promise.all(gateways.map((g) => g.openOrCreate('carol')));
    const caps = new Set(answers.map((a) => (a.kind === 'live' ? a.cap : 'revoked')));
    expect(caps.size).toBe(1);
    expect(answers.filter((a) => a.kind === 'live' && a.created)).toHaveLength(1);
  });

  it('never puts the cap or the name in the clear in the slot store', async () => {
    const { store, slots, secret } = homes();
    await store.openOrCreate('dave@example.org');
    const si = homeStorageIndex(deriveHomeKeys(secret), 'dave@example.org');
    const entry = await slots.get(si);
    const text = Buffer.from(entry!.record).toString('latin1');
    expect(text).not.toContain('CS1:');
    expect(text).not.toContain('dave');
    expect(Buffer.from(si).toString('latin1')).not.toContain('dave');
  });

  it('refuses a record moved to another slot or served under another seq', async () => {
    const { store, slots, secret } = homes();
    await store.openOrCreate('erin');
    const keys = deriveHomeKeys(secret);
    const erin = homeStorageIndex(keys, 'erin');
    const entry = (await slots.get(erin))!;
    expect(() => openHomeRecord(keys, homeStorageIndex(keys, 'frank'), entry.seq, entry.record)).toThrow(
      expect.objectContaining({ name: 'IntegrityError' }),
    );
    expect(() => openHomeRecord(keys, erin, entry.seq + 1n, entry.record)).toThrow(expect.objectContaining({ name: 'IntegrityError' }));
    const tampered = new Uint8Array(entry.record);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => openHomeRecord(keys, erin, entry.seq, tampered)).toThrow(expect.objectContaining({ name: 'IntegrityError' }));
    // Another system's secret sees no home there, and cannot read the record.
    const other = new HomeStore({ slots, secret: randomBytes(32), createRoot: async () => 'CS1:DIR:x' });
    expect(await other.get('erin')).toEqual({ kind: 'absent' });
  });

  it('revokes (logins refused) and renews (a fresh root)', async () => {
    const { store } = homes();
    expect(await store.revoke('gina')).toBe(false);
    await store.openOrCreate('gina');
    expect(await store.revoke('gina')).toBe(true);
    expect(await store.openOrCreate('gina')).toMatchObject({ kind: 'revoked' });
    expect(await store.get('gina')).toMatchObject({ kind: 'revoked', seq: 2n });
    const fresh = await store.renew('gina');
    expect(fresh).toBe('CS1:DIR:root1');
    expect(await store.openOrCreate('gina')).toEqual({ kind: 'live', cap: fresh, created: false });
    expect(await store.renew('henry')).toBe('CS1:DIR:root2');
  });

  it("lists this system's homes and nothing else", async () => {
    const slots = new MemorySlotStore();
    const { store } = homes(slots);
    await store.openOrCreate('ivan');
    await store.openOrCreate('/bucket/home/shared');
    await store.revoke('ivan');
    await slots.compareAndSwap(randomBytes(32), null, { seq: 1n, record: new Uint8Array([1, 2, 3]) });
    const other = new HomeStore({ slots, secret: randomBytes(32), createRoot: async () => 'CS1:DIR:other' });
    await other.openOrCreate('ivan');
    const listed = [];
    for await (const h of store.list()) listed.push([h.name, h.state.kind]);
    expect(listed.sort()).toEqual([
      ['/bucket/home/shared', 'live'],
      ['ivan', 'revoked'],
    ]);
  });

  it('checks that every process uses the same homes secret', async () => {
    const slots = new MemorySlotStore();
    const secret = randomBytes(32);
    await homes(slots, secret).store.checkSecret();
    await homes(slots, secret).store.checkSecret();
    await expect(homes(slots, randomBytes(32)).store.checkSecret()).rejects.toMatchObject({ name: 'InvalidInputError' });
  });
});
