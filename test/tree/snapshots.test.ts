import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryReadCap, DirectoryWriteCap, isDirectoryCap, parseCap, type DirectoryCap } from '../../src/cap/index.js';
import type { SlotStore } from '../../src/store/slots/slot-store.js';
import { createTree, removeDirectory, snapshotNames, uploadBytes, type Tree } from '../../src/tree/index.js';
import { treeBackends, type TreeStores } from '../helpers/tree-stores.js';

/** Every file under `cap` as path → bytes (hex), every directory as path → 'dir'. */
async function contents(tree: Tree, cap: DirectoryCap, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const entry of tree.directory(cap).list()) {
    const path = `${prefix}/${entry.name}`;
    if (isDirectoryCap(entry.cap)) {
      out[path] = 'dir';
      Object.assign(out, await contents(tree, entry.cap, path));
    } else {
      const reader = await tree.openFile(entry.cap as Parameters<Tree['openFile']>[0]);
      out[path] = Buffer.from(await reader.read(0, entry.metadata.size)).toString('hex');
    }
  }
  return out;
}

/** Counts slot store calls, to show a snapshot costs the same whatever the tree holds. */
function counting(slots: SlotStore): { slots: SlotStore; calls: () => number } {
  let calls = 0;
  const history = slots.history!;
  const wrapped: SlotStore = {
    get: (...a) => (calls++, slots.get(...a)),
    compareAndSwap: (...a) => (calls++, slots.compareAndSwap(...a)),
    list: (...a) => slots.list(...a),
    history: {
      pin: (...a) => (calls++, history.pin(...a)),
      unpin: (...a) => history.unpin(...a),
      prune: (...a) => history.prune(...a),
      pins: (...a) => history.pins(...a),
      getAt: (...a) => (calls++, history.getAt(...a)),
    },
    close: () => slots.close(),
  };
  return { slots: wrapped, calls: () => calls };
}

for (const backend of treeBackends({ fsync: false })) {
  describe(`snapshots (${backend.name})`, () => {
    let stores: TreeStores;
    let tree: Tree;
    let root: DirectoryWriteCap;
    const convergence = new Uint8Array(32);
    const put = async (dir: DirectoryWriteCap, name: string, bytes: Uint8Array) => {
      const { cap, size } = await uploadBytes(stores.chunks, convergence, bytes);
      await tree.directory(dir).link(name, cap, { size, mtimeMs: 1, ctimeMs: 1 }, { overwrite: true });
    };

    beforeEach(async () => {
      stores = await backend.open();
      tree = createTree({ chunks: stores.chunks, slots: stores.slots });
      root = await tree.createDirectory();
    });
    afterEach(async () => {
      await tree.close();
      await stores.close();
    });

    it('a snapshot reads the whole tree as it was, whatever changed after; it is read-only', async () => {
      const docs = await tree.directory(root).mkdir('docs');
      const deep = await tree.directory(docs).mkdir('deep');
      await put(root, 'a.txt', randomBytes(100));
      await put(docs, 'b.bin', randomBytes(70_000));
      await put(deep, 'c', randomBytes(3));
      const before = await contents(tree, root);

      const snapshot = await tree.createSnapshot(root);
      expect(snapshot.cap.toString()).toMatch(/^CS1:DIR-SNAP:[a-z2-7]{52}:[a-z2-7]{52}:[1-9][0-9]*$/);

      await put(root, 'a.txt', randomBytes(5)); // overwritten
      await put(docs, 'new', randomBytes(9)); // added
      await tree.directory(docs).unlink('b.bin'); // removed
      await tree.directory(deep).unlink('c');
      await removeDirectory(tree.directory(docs), 'deep', (e) => tree.directory(e.cap as DirectoryCap)); // rmdir seals it
      await tree.directory(root).rename('docs', 'renamed');

      expect(await contents(tree, snapshot.cap)).toEqual(before);
      expect(await contents(tree, root)).not.toEqual(before);
      // Through the printed cap too, and every directory under it comes out as a snapshot cap.
      const parsed = parseCap(snapshot.cap.toString()) as DirectoryReadCap;
      expect(await contents(tree, parsed)).toEqual(before);
      const child = (await tree.directory(parsed).lookup('docs'))!.cap;
      expect(child).toBeInstanceOf(DirectoryReadCap);
      expect((child as DirectoryReadCap).epoch).toBe(snapshot.epoch);
      await expect(tree.directory(snapshot.cap).link('x', child, { size: 0, mtimeMs: 0, ctimeMs: 0 })).rejects.toMatchObject({
        name: 'PermissionError',
      });
    });

    it('list gives each snapshot of a directory, oldest first; remove makes its cap NotFoundError and keeps the others', async () => {
      await put(root, 'f', Buffer.from('one'));
      const first = await tree.createSnapshot(root);
      await put(root, 'f', Buffer.from('two'));
      const second = await tree.createSnapshot(root);
      await put(root, 'f', Buffer.from('three'));
      const listed = await tree.listSnapshots(root.readonly());
      expect(listed.map((s) => s.cap.toString())).toEqual([first.cap.toString(), second.cap.toString()]);
      expect(await tree.listSnapshots(await tree.createDirectory())).toEqual([]);

      await tree.removeSnapshot(first.cap);
      await expect(tree.directory(first.cap).lookup('f')).rejects.toMatchObject({ name: 'NotFoundError' });
      await expect(tree.removeSnapshot(first.cap)).rejects.toMatchObject({ name: 'NotFoundError' });
      expect(await contents(tree, second.cap)).toEqual({ '/f': Buffer.from('two').toString('hex') });
      expect((await tree.listSnapshots(root)).map((s) => s.epoch)).toEqual([second.epoch]);
    });

    it('costs the same store calls for a tree of 1 directory and of 60', async () => {
      const measure = async (dirs: number): Promise<number> => {
        const { slots, calls } = counting(stores.slots);
        const counted = createTree({ chunks: stores.chunks, slots });
        const top = await counted.createDirectory();
        let parent = top;
        for (let i = 1; i < dirs; i++) parent = await counted.directory(i % 6 === 0 ? top : parent).mkdir(`d${i}`);
        const start = calls();
        await counted.createSnapshot(top);
        return calls() - start;
      };
      expect(await measure(60)).toBe(await measure(1));
    });

    it('refuses a read cap, a removed directory and a cap that is not a snapshot', async () => {
      await expect(tree.createSnapshot(root.readonly() as unknown as DirectoryWriteCap)).rejects.toMatchObject({
        name: 'InvalidInputError',
      });
      const gone = await tree.directory(root).mkdir('gone');
      await removeDirectory(tree.directory(root), 'gone', (e) => tree.directory(e.cap as DirectoryCap));
      await expect(tree.createSnapshot(gone)).rejects.toMatchObject({ name: 'DirectoryRemovedError' });
      await expect(tree.removeSnapshot(root.readonly())).rejects.toMatchObject({ name: 'InvalidInputError' });
    });
  });
}

describe('snapshot names', () => {
  it('are the UTC second, with _2, _3 for more in the same second', () => {
    const cap = new DirectoryWriteCap(new Uint8Array(32)).readonly();
    const at = (ms: number, epoch: bigint) => ({ cap: cap.at(epoch), epoch, createdMs: ms });
    const t = Date.UTC(2026, 11, 2, 3, 0, 0);
    expect(snapshotNames([at(t, 1n), at(t + 400, 2n), at(t + 1000, 3n), at(t + 999, 4n)]).map((n) => n.name)).toEqual([
      '2026-12-02T03:00:00Z',
      '2026-12-02T03:00:00Z_2',
      '2026-12-02T03:00:01Z',
      '2026-12-02T03:00:00Z_3',
    ]);
  });
});
