import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DirectoryWriteCap, FileReadCap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import { NotFoundError } from '../../src/errors.js';
import type { DirEntry, Directory, EntryMetadata, Tree } from '../../src/tree/api.js';
import { SLOT_FORMAT_V2, verifySlotRecord } from '../../src/tree/dir/slot-record.js';
import { createTree, moveEntry, removeDirectory } from '../../src/tree/index.js';
import { treeBackends, type TreeStores } from '../helpers/tree-stores.js';

/**
 * Removing a directory (docs/spec/slots.md): seal, then unlink. Two Trees on
 * one pair of stores stand for two gateways; every race is run for many
 * rounds with a random head start on either side, and each round must end
 * in one of the outcomes one disk could give, with "acknowledged ⇒ present".
 */

const meta: EntryMetadata = { size: 1, mtimeMs: 1, ctimeMs: 1 };
const fileCap = (): FileReadCap => new FileReadCap(randomBytes(32), randomBytes(32), 1);
const ROUNDS = Number(process.env.CAPSTAN_RACE_ROUNDS ?? 60);

async function names(dir: Directory): Promise<string[]> {
  const out: string[] = [];
  for await (const e of dir.list()) out.push(e.name);
  return out.sort();
}

/** Settles a promise into its outcome: true, or the error's name. */
async function outcome(p: Promise<unknown>): Promise<true | string> {
  try {
    await p;
    return true;
  } catch (err) {
    return (err as Error).name;
  }
}

/** Starts `a` and `b` at nearly the same moment, one of them after a random pause of up to 3 ms. */
async function race(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[true | string, true | string]> {
  const delay = Math.random() * 3;
  const later = (f: () => Promise<unknown>) => new Promise<void>((r) => setTimeout(r, delay)).then(f);
  const first = Math.random() < 0.5;
  return Promise.all([outcome(first ? a() : later(a)), outcome(first ? later(b) : b())]);
}

const rm = (tree: Tree, parent: Directory, name: string): Promise<DirEntry> =>
  removeDirectory(parent, name, (entry) => tree.directory(entry.cap as DirectoryWriteCap));

describe.each(treeBackends({ fsync: false }))('removing directories ($name)', (backend) => {
  let stores: TreeStores;
  let one: Tree;
  let two: Tree;
  let root: DirectoryWriteCap;
  beforeEach(async () => {
    stores = await backend.open();
    one = createTree({ chunks: stores.chunks, slots: stores.slots });
    two = createTree({ chunks: stores.chunks, slots: stores.slots });
    root = await one.createDirectory();
  });
  afterEach(async () => {
    await stores.close();
  });

  it('seal refuses a directory with entries; a sealed one is gone for every operation, through any Tree', async () => {
    const d = await one.directory(root).mkdir('d');
    await one.directory(d).link('f', fileCap(), meta);
    await expect(one.directory(d).seal()).rejects.toMatchObject({ name: 'NotEmptyError' });
    await one.directory(d).unlink('f');
    await one.directory(d).seal();
    await one.directory(d).seal(); // again: nothing to do
    const record = (await stores.slots.get(d.storageIndex))!;
    expect(record.record[0]).toBe(SLOT_FORMAT_V2);
    expect(verifySlotRecord(d.publicKey, Buffer.from(d.storageIndex).toString('hex'), record).sealed).toBe(true);
    for (const tree of [one, two]) {
      const gone = tree.directory(d);
      // DirectoryRemovedError is a NotFoundError (SFTP: NO_SUCH_FILE) that says why.
      await expect(gone.link('f', fileCap(), meta)).rejects.toBeInstanceOf(NotFoundError);
      await expect(gone.link('f', fileCap(), meta)).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
      await expect(gone.lookup('f')).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
      await expect(gone.mkdir('x')).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
      await expect(names(gone)).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
      await expect(tree.directory(d.readonly()).count()).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
    }
    await two.directory(d).unseal();
    await one.directory(d).link('g', fileCap(), meta);
    expect(await names(two.directory(d))).toEqual(['g']);
  });

  it('a crash between the seal and the unlink leaves a sealed entry that the next rmdir removes', async () => {
    const d = await one.directory(root).mkdir('d');
    await one.directory(d).seal(); // the first half of an rmdir, then "the crash"
    expect(await names(one.directory(root))).toEqual(['d']);
    await expect(one.directory(d).link('f', fileCap(), meta)).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
    await rm(two, two.directory(root), 'd');
    expect(await names(one.directory(root))).toEqual([]);
  });

  it('a read-only link to a directory is unlinked when the directory is empty, and never sealed', async () => {
    const d = await one.directory(root).mkdir('d');
    await one.directory(root).link('ro', d.readonly(), meta);
    await one.directory(d).link('f', fileCap(), meta);
    await expect(rm(one, one.directory(root), 'ro')).rejects.toMatchObject({ name: 'NotEmptyError' });
    await one.directory(d).unlink('f');
    await rm(one, one.directory(root), 'ro');
    expect(await names(one.directory(root))).toEqual(['d']);
    await one.directory(d).link('still-usable', fileCap(), meta);
  });

  it(`link into a directory vs its removal (${ROUNDS} rounds): exactly one wins; what was linked is there`, async () => {
    const counts = { link: 0, rmdir: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const d = await one.directory(root).mkdir(`d${i}`);
      const [linked, removed] = await race(
        () => one.directory(d).link('f', fileCap(), meta),
        () => rm(two, two.directory(root), `d${i}`),
      );
      if (linked === true) {
        expect(removed).toBe('NotEmptyError');
        expect(await names(two.directory(d))).toEqual(['f']);
        expect((await one.directory(root).lookup(`d${i}`))?.cap.toString()).toBe(d.toString());
        counts.link++;
      } else {
        expect([linked, removed]).toEqual(['DirectoryRemovedError', true]);
        expect(await one.directory(root).lookup(`d${i}`)).toBeUndefined();
        counts.rmdir++;
      }
    }
    // Both outcomes happen (the race is real), and they add up.
    expect(counts.link + counts.rmdir).toBe(ROUNDS);
  });

  it(`rename of a directory vs its removal (${ROUNDS} rounds): never both`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const d = await one.directory(root).mkdir(`d${i}`);
      const [renamed, removed] = await race(
        () => one.directory(root).rename(`d${i}`, `e${i}`),
        () => rm(two, two.directory(root), `d${i}`),
      );
      if (renamed === true) {
        expect(removed).toBe('NotFoundError');
        // It lives on under its new name, not sealed: usable.
        expect((await one.directory(root).lookup(`e${i}`))?.cap.toString()).toBe(d.toString());
        await one.directory(d).link('alive', fileCap(), meta);
      } else {
        expect([renamed, removed]).toEqual(['NotFoundError', true]);
        expect(await one.directory(root).lookup(`e${i}`)).toBeUndefined();
      }
      expect(await one.directory(root).lookup(`d${i}`)).toBeUndefined();
    }
  });

  it(`a move across directories vs a remove of its source (${ROUNDS} rounds): never both, and the target keeps what it had`, async () => {
    const from = await one.directory(root).mkdir('from');
    const to = await one.directory(root).mkdir('to');
    for (let i = 0; i < ROUNDS; i++) {
      const moved = fileCap();
      const old = fileCap();
      await one.directory(from).link(`x${i}`, moved, meta);
      const replacing = i % 2 === 0;
      if (replacing) await one.directory(to).link(`x${i}`, old, meta);
      const [move, removal] = await race(
        () => moveEntry(one.directory(from), `x${i}`, one.directory(to), `x${i}`, { overwrite: true }),
        () => two.directory(from).unlink(`x${i}`),
      );
      expect(await two.directory(from).lookup(`x${i}`)).toBeUndefined();
      const there = (await two.directory(to).lookup(`x${i}`))?.cap.toString();
      if (move === true) {
        expect(removal).toBe('NotFoundError');
        expect(there).toBe(moved.toString());
      } else {
        expect([move, removal]).toEqual(['NotFoundError', true]);
        expect(there).toBe(replacing ? old.toString() : undefined);
      }
    }
  });

  it(`mkdir vs mkdir of one name (${ROUNDS} rounds): exactly one wins`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const [a, b] = await race(
        () => one.directory(root).mkdir(`m${i}`),
        () => two.directory(root).mkdir(`m${i}`),
      );
      expect([a, b].filter((o) => o === true)).toHaveLength(1);
      expect([a, b].filter((o) => o === 'AlreadyExistsError')).toHaveLength(1);
    }
  });
});
