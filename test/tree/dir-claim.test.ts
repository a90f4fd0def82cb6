import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DirectoryWriteCap, FileReadCap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import type { Directory, EntryMetadata, Tree } from '../../src/tree/api.js';
import { createTree, moveEntry } from '../../src/tree/index.js';
import { treeBackends, type TreeStores } from '../helpers/tree-stores.js';

/**
 * Claiming a file by moving it (docs/operations.md, File exchange): two
 * processors move one inbox entry to the same name in processing/, with
 * overwrite (SFTP posix-rename, which OpenSSH's `rename` uses). Exactly one
 * may win, and the file must end up in processing/ exactly once.
 *
 * The interleaving that matters: the second mover links over the first
 * one's link (the same cap), wins the unlink of the source, and the first
 * then undoes its link. Its undo must recognise that the entry there is no
 * longer its own, or the file is in neither directory.
 */

const meta: EntryMetadata = { size: 1, mtimeMs: 1, ctimeMs: 1 };
const ROUNDS = Number(process.env.CAPSTAN_RACE_ROUNDS ?? 60);

/** `dir`, except that its first swapEntry runs `before` to completion first. */
function pausedBeforeSwap(dir: Directory, before: () => Promise<unknown>): Directory {
  let first = true;
  return new Proxy(dir, {
    get(target, prop, receiver) {
      if (prop === 'swapEntry') {
        return async (...args: Parameters<Directory['swapEntry']>) => {
          if (first) {
            first = false;
            await before();
          }
          return target.swapEntry(...args);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe.each(treeBackends({ fsync: false }))('claiming by move ($name)', (backend) => {
  let stores: TreeStores;
  let one: Tree;
  let two: Tree;
  let inbox: DirectoryWriteCap;
  let processing: DirectoryWriteCap;
  beforeEach(async () => {
    stores = await backend.open();
    one = createTree({ chunks: stores.chunks, slots: stores.slots });
    two = createTree({ chunks: stores.chunks, slots: stores.slots });
    inbox = await one.createDirectory();
    processing = await one.createDirectory();
  });
  afterEach(async () => {
    await stores.close();
  });

  it('the second mover links over the first one and wins: the first one fails, and the file stays claimed', async () => {
    const file = new FileReadCap(randomBytes(32), randomBytes(32), 1);
    await one.directory(inbox).link('x', file, meta);
    // The second mover starts once the first has linked, and runs to the end before the first unlinks the source.
    let secondOutcome: unknown = 'not run';
    const second = () =>
      moveEntry(two.directory(inbox), 'x', two.directory(processing), 'x', { overwrite: true }).then(
        () => (secondOutcome = true),
        (err: Error) => (secondOutcome = err.name),
      );
    const first = moveEntry(pausedBeforeSwap(one.directory(inbox), second), 'x', one.directory(processing), 'x', { overwrite: true });
    await expect(first).rejects.toMatchObject({ name: 'NotFoundError' });
    expect(secondOutcome).toBe(true);
    expect(await one.directory(inbox).lookup('x')).toBeUndefined();
    expect((await one.directory(processing).lookup('x'))?.cap.toString()).toBe(file.toString());
  });

  it(`two movers racing for one entry (${ROUNDS} rounds): exactly one wins, the file is claimed exactly once`, async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const file = new FileReadCap(randomBytes(32), randomBytes(32), 1);
      await one.directory(inbox).link(`x${i}`, file, meta);
      const delay = Math.random() * 3; // a random schedule for the race, not synchronisation
      const settle = (p: Promise<unknown>) =>
        p.then(
          () => true,
          (err: Error) => err.name,
        );
      const move = (tree: Tree, wait: boolean) =>
        new Promise((r) => setTimeout(r, wait ? delay : 0)).then(() =>
          moveEntry(tree.directory(inbox), `x${i}`, tree.directory(processing), `x${i}`, { overwrite: true }),
        );
      const outcomes = await Promise.all([settle(move(one, Math.random() < 0.5)), settle(move(two, Math.random() < 0.5))]);
      expect(outcomes.filter((o) => o === true)).toHaveLength(1);
      expect(outcomes.filter((o) => o !== true)).toEqual(['NotFoundError']);
      expect(await one.directory(inbox).lookup(`x${i}`)).toBeUndefined();
      expect((await two.directory(processing).lookup(`x${i}`))?.cap.toString()).toBe(file.toString());
    }
  });
});
