import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryReadCap, type DirectoryWriteCap, FileReadCap } from '../../src/cap/index.js';
import { TAG, netstring, randomBytes } from '../../src/crypto/index.js';
import type { DirEntry, Directory, EntryMetadata, Tree } from '../../src/tree/api.js';
import { SLOT_FORMAT_V2, encodeSlotRecord, verifySlotRecord, type SlotVersion } from '../../src/tree/dir/slot-record.js';
import { createTree, linkShared, removeDirectory } from '../../src/tree/index.js';
import { treeBackends, type TreeStores } from '../helpers/tree-stores.js';

/**
 * Shared directories (docs/spec/slots.md, Shared directories): a directory
 * write cap linked by `capstan ln` is marked shared, and rmdir of any one of
 * its names unlinks that name without sealing, so its other names keep
 * working. Two Trees on one pair of stores stand for two gateways.
 */

const meta: EntryMetadata = { size: 1, mtimeMs: 1, ctimeMs: 1 };
const fileCap = (): FileReadCap => new FileReadCap(randomBytes(32), randomBytes(32), 1);
const ROUNDS = Number(process.env.CAPSTAN_RACE_ROUNDS ?? 60);

async function names(dir: Directory): Promise<string[]> {
  const out: string[] = [];
  for await (const e of dir.list()) out.push(e.name);
  return out.sort();
}

async function outcome(p: Promise<unknown>): Promise<true | string> {
  try {
    await p;
    return true;
  } catch (err) {
    return (err as Error).name;
  }
}

describe.each(treeBackends({ fsync: false }))('shared directories ($name)', (backend) => {
  let stores: TreeStores;
  let one: Tree;
  let two: Tree;
  let alice: DirectoryWriteCap;
  let bob: DirectoryWriteCap;
  beforeEach(async () => {
    stores = await backend.open();
    one = createTree({ chunks: stores.chunks, slots: stores.slots });
    two = createTree({ chunks: stores.chunks, slots: stores.slots });
    alice = await one.createDirectory();
    bob = await one.createDirectory();
  });
  afterEach(async () => {
    await stores.close();
  });

  const open = (tree: Tree) => (cap: DirectoryWriteCap) => tree.directory(cap);
  const rmdir = (tree: Tree, parent: Directory, name: string): Promise<DirEntry> =>
    removeDirectory(parent, name, (entry) => tree.directory(entry.cap as DirectoryWriteCap));
  const version = async (d: DirectoryWriteCap): Promise<SlotVersion & { format: number }> => {
    const entry = (await stores.slots.get(d.storageIndex))!;
    return { ...verifySlotRecord(d.publicKey, Buffer.from(d.storageIndex).toString('hex'), entry), format: entry.record[0]! };
  };

  it('a write link marks the directory shared, and every later version keeps the mark', async () => {
    const d = await one.directory(alice).mkdir('input');
    expect(await version(d)).toMatchObject({ shared: false, sealed: false, format: 1 });
    await linkShared(one.directory(bob), 'from-alice', d, meta, open(one));
    expect(await version(d)).toMatchObject({ shared: true, sealed: false, format: SLOT_FORMAT_V2 });
    await two.directory(d).link('f', fileCap(), meta);
    await two.directory(d).unlink('f');
    expect(await version(d)).toMatchObject({ shared: true, sealed: false, format: SLOT_FORMAT_V2 });
    const seq = (await version(d)).seq;
    await linkShared(one.directory(bob), 'again', d, meta, open(one));
    expect((await version(d)).seq).toBe(seq); // marking a shared directory writes nothing
  });

  it('a signed v2 record with a flag bit this version does not know is refused, like any bad record', async () => {
    const d = await one.directory(alice).mkdir('flags');
    const { seq, root } = await version(d);
    const si = Buffer.from(d.storageIndex).toString('hex');
    const record = encodeSlotRecord(d.signingKey, d.storageIndex, { seq, root, sealed: false, shared: true });
    expect(record[41]).toBe(0x02);
    const forged = new Uint8Array(record);
    forged[41] = 0x06;
    const body = forged.subarray(0, forged.length - 64);
    forged.set(d.signingKey.sign(Buffer.concat([netstring(Buffer.from(TAG.slotSignatureV2)), body])), body.length);
    expect(() => verifySlotRecord(d.publicKey, si, { seq, record })).not.toThrow();
    expect(() => verifySlotRecord(d.publicKey, si, { seq, record: forged })).toThrow(expect.objectContaining({ name: 'IntegrityError' }));
  });

  it('rmdir of one name of a shared directory leaves the other name working', async () => {
    const d = await one.directory(alice).mkdir('input');
    await linkShared(one.directory(bob), 'from-alice', d, meta, open(one));
    await two.directory(d).link('f', fileCap(), meta);
    await expect(rmdir(one, one.directory(alice), 'input')).rejects.toMatchObject({ name: 'NotEmptyError' });
    await two.directory(d).unlink('f');
    await rmdir(one, one.directory(alice), 'input');
    expect(await names(one.directory(alice))).toEqual([]);
    expect(await version(d)).toMatchObject({ shared: true, sealed: false });
    const viaBob = (await two.directory(bob).lookup('from-alice'))!.cap as DirectoryWriteCap;
    await two.directory(viaBob).link('after', fileCap(), meta);
    expect(await names(two.directory(viaBob))).toEqual(['after']);
    // The last name goes the same way: unlinked, never sealed (a holder of the cap still has it).
    await two.directory(viaBob).unlink('after');
    await rmdir(two, two.directory(bob), 'from-alice');
    expect(await names(one.directory(d))).toEqual([]);
  });

  it('--readonly links the read cap, and the writer removing its name does not break it', async () => {
    const out = await one.directory(alice).mkdir('outbox');
    await linkShared(one.directory(bob), 'output', out, meta, open(one), { readonly: true });
    const entry = (await two.directory(bob).lookup('output'))!;
    expect(entry.cap).toBeInstanceOf(DirectoryReadCap);
    expect(entry.cap.toString()).toBe(out.readonly().toString());
    await expect(two.directory(entry.cap as DirectoryReadCap).link('x', fileCap(), meta)).rejects.toMatchObject({
      name: 'PermissionError',
    });
    await one.directory(out).link('result', fileCap(), meta);
    await one.directory(out).unlink('result');
    await rmdir(one, one.directory(alice), 'outbox');
    expect(await names(two.directory(entry.cap as DirectoryReadCap))).toEqual([]);
  });

  it('a read cap source links read-only and marks nothing (it cannot sign)', async () => {
    const d = await one.directory(alice).mkdir('d');
    await linkShared(one.directory(bob), 'ro', d.readonly(), meta, open(one));
    expect((await one.directory(bob).lookup('ro'))!.cap.toString()).toBe(d.readonly().toString());
    expect(await version(d)).toMatchObject({ shared: false });
  });

  it('a directory rmdir sealed is refused, and nothing is linked', async () => {
    const d = await one.directory(alice).mkdir('gone');
    await rmdir(one, one.directory(alice), 'gone');
    await expect(linkShared(one.directory(bob), 'dead', d, meta, open(one))).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
    expect(await names(one.directory(bob))).toEqual([]);
  });

  it(`an upload into a shared directory vs rmdir of one of its names (${ROUNDS} rounds): what was linked stays reachable`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const d = await one.directory(alice).mkdir(`d${i}`);
      await linkShared(one.directory(bob), `d${i}`, d, meta, open(one));
      const f = fileCap();
      const delay = Math.random() * 3; // a random schedule for the race, not synchronisation
      const [linked, removed] = await Promise.all([
        outcome(new Promise((r) => setTimeout(r, Math.random() < 0.5 ? 0 : delay)).then(() => one.directory(d).link('f', f, meta))),
        outcome(new Promise((r) => setTimeout(r, Math.random() < 0.5 ? 0 : delay)).then(() => rmdir(two, two.directory(alice), `d${i}`))),
      ]);
      // The upload always lands (a shared directory is never sealed), and stays under bob's name.
      expect(linked).toBe(true);
      expect([true, 'NotEmptyError']).toContain(removed);
      const viaBob = (await two.directory(bob).lookup(`d${i}`))!.cap as DirectoryWriteCap;
      expect((await two.directory(viaBob).lookup('f'))?.cap.toString()).toBe(f.toString());
      expect((await two.directory(alice).lookup(`d${i}`)) === undefined).toBe(removed === true);
    }
  });
});
