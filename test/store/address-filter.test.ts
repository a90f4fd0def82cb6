import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { describe, expect, it, vi } from 'vitest';
import { addressOf } from '../../src/store/address.js';
import { AddressFilter } from '../../src/store/packs/address-filter.js';
import { LevelObjectIndex } from '../../src/store/packs/level-index.js';

const entryFor = (bytes: Uint8Array) => ({
  address: addressOf(bytes),
  location: { pack: '00'.repeat(8), offset: 16, length: bytes.length },
  lastPutSec: 1,
});

describe('AddressFilter', () => {
  it('never denies an address it was given; about 1 % false "maybe" at capacity', () => {
    const filter = new AddressFilter(50_000);
    const added = Array.from({ length: filter.capacity }, () => randomBytes(32));
    for (const d of added) filter.add(d);
    for (const d of added) expect(filter.mayHold(d)).toBe(true);
    let maybe = 0;
    for (let i = 0; i < 100_000; i++) if (filter.mayHold(randomBytes(32))) maybe++;
    expect(maybe / 100_000).toBeLessThan(0.02);
    // 10 bits per object: 1.25 bytes.
    expect(filter.bytes / filter.capacity).toBeCloseTo(1.25, 2);
  });
});

describe('LevelObjectIndex with its miss filter', () => {
  it('finds every entry put before, during and after the scan, also after the filter grew', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-filter-'));
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
    await db.open();
    try {
      const before = Array.from({ length: 8000 }, () => randomBytes(40));
      let index = new LevelObjectIndex(db);
      await index.putMany(before.map(entryFor));
      index = new LevelObjectIndex(db);
      // A first filter too small (the least is 65,536 bits, 6,553 objects): it must grow while puts go on.
      index.startFilter(100);
      const during: Uint8Array[] = [];
      for (let i = 0; i < 50 && index.filter === undefined; i++) {
        const batch = Array.from({ length: 20 }, () => randomBytes(40));
        during.push(...batch);
        await index.putMany(batch.map(entryFor));
      }
      await vi.waitFor(() => expect(index.filter).toBeDefined());
      expect(index.filter!.capacity).toBeGreaterThanOrEqual(8000);
      const after = Array.from({ length: 500 }, () => randomBytes(40));
      await index.putMany(after.map(entryFor));
      for (const bytes of [...before, ...during, ...after]) expect(await index.get(addressOf(bytes))).toBeDefined();
      expect(await index.get(addressOf(randomBytes(40)))).toBeUndefined();
      await index.close();
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
