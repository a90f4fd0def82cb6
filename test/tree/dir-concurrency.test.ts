import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileReadCap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import { ConflictError, type AbortOptions } from '../../src/errors.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import type { SlotEntry, SlotStore } from '../../src/store/slots/slot-store.js';
import type { Directory, EntryMetadata } from '../../src/tree/api.js';
import { createTree } from '../../src/tree/index.js';
import { createTreeWithInternals } from '../../src/tree/tree.js';
import { treeBackends, type TreeStores } from '../helpers/tree-stores.js';

const meta: EntryMetadata = { size: 1, mtimeMs: 1, ctimeMs: 1 };
const fileCap = (): FileReadCap => new FileReadCap(randomBytes(32), randomBytes(32), 1);

async function names(dir: Directory): Promise<string[]> {
  const out: string[] = [];
  for await (const e of dir.list()) out.push(e.name);
  return out;
}

/** Runs `fn` over `items` with `limit` in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

// No fsync for chunk files: these tests are about the slot's compare-and-swap, which LevelSlotStore still syncs.
const backends = treeBackends({ fsync: false });

describe.each(backends)('two writers on one directory ($name)', (backend) => {
  let stores: TreeStores;
  beforeEach(async () => {
    stores = await backend.open();
  });
  afterEach(async () => {
    await stores.close();
  });

  it('two Trees adding 200 entries each, concurrently, end with all 400', async () => {
    const one = createTree({ chunks: stores.chunks, slots: stores.slots });
    const two = createTree({ chunks: stores.chunks, slots: stores.slots });
    const cap = await one.createDirectory();
    const names1 = Array.from({ length: 200 }, (_, i) => `one-${i}`);
    const names2 = Array.from({ length: 200 }, (_, i) => `two-${i}`);
    await Promise.all([
      pool(names1, 4, (n) => one.directory(cap).link(n, fileCap(), meta)),
      pool(names2, 4, (n) => two.directory(cap).link(n, fileCap(), meta)),
    ]);
    const listed = await names(createTree({ chunks: stores.chunks, slots: stores.slots }).directory(cap));
    expect(listed.length).toBe(400);
    expect(new Set(listed)).toEqual(new Set([...names1, ...names2]));
    expect(await two.directory(cap).count()).toBe(400);
    // Every successful add was one slot version.
    expect((await stores.slots.get(cap.storageIndex))!.seq).toBe(401n);
  });

  it('racing links of the same names: exactly one wins each, the other gets AlreadyExistsError', async () => {
    const one = createTree({ chunks: stores.chunks, slots: stores.slots });
    const two = createTree({ chunks: stores.chunks, slots: stores.slots });
    const cap = await one.createDirectory();
    const contested = Array.from({ length: 20 }, (_, i) => `same-${i}`);
    const outcomes = await Promise.all(
      contested.flatMap((n) =>
        [one, two].map((t) =>
          t
            .directory(cap)
            .link(n, fileCap(), meta)
            .then(
              () => 'ok',
              (e: Error) => e.name,
            ),
        ),
      ),
    );
    for (let i = 0; i < contested.length; i++) {
      expect([outcomes[2 * i], outcomes[2 * i + 1]].sort()).toEqual(['AlreadyExistsError', 'ok']);
    }
    expect((await names(one.directory(cap))).length).toBe(20);
  });
});

/** A fault injector: a slot store whose swaps always lose, as if another writer always got there first. */
class AlwaysConflictingSlotStore implements SlotStore {
  swaps = 0;
  constructor(private readonly inner: SlotStore) {}
  get(si: Uint8Array, options?: AbortOptions) {
    return this.inner.get(si, options);
  }
  async compareAndSwap(si: Uint8Array, expected: bigint | null, next: SlotEntry, options?: AbortOptions) {
    if (expected === null) return this.inner.compareAndSwap(si, expected, next, options);
    this.swaps++;
    throw new ConflictError('injected');
  }
  list(options?: AbortOptions) {
    return this.inner.list(options);
  }
  close() {
    return this.inner.close();
  }
}

describe('conflict retry is bounded', () => {
  it('gives up with TransientError after maxAttempts lost swaps, changing nothing', async () => {
    const slots = new AlwaysConflictingSlotStore(new MemorySlotStore());
    const tree = createTreeWithInternals({ chunks: new MemoryChunkStore(), slots }, { maxAttempts: 5 });
    const cap = await tree.createDirectory();
    await expect(tree.directory(cap).link('x', fileCap(), meta)).rejects.toMatchObject({ name: 'TransientError' });
    expect(slots.swaps).toBe(5);
    expect(await tree.directory(cap).count()).toBe(0);
  });
});
