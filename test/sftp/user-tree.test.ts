import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/index.js';
import { UploadOverlay } from '../../src/sftp/overlay.js';
import { UserTree } from '../../src/sftp/user-tree.js';
import type { WriteHandle } from '../../src/sftp/write-handle.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { createTree } from '../../src/tree/tree.js';

async function userTree(): Promise<UserTree> {
  const tree = createTree({ chunks: new MemoryChunkStore(), slots: new MemorySlotStore() });
  return new UserTree({
    tree,
    user: 'u',
    root: await tree.createDirectory(),
    writable: true,
    overlay: new UploadOverlay<WriteHandle>(),
    writeDeps: {
      tree,
      convergence: randomBytes(32),
      createSpool: () => Promise.reject(new Error('no spool in this test')),
    },
  });
}

const FLAGS = { create: true, exclusive: false, truncate: true, append: false, read: false };

describe('UserTree: the entry a path walk found', () => {
  it('is used while no upload left the overlay, and looked up again once one did (its commit may have linked a newer entry)', async () => {
    const view = await userTree();
    const handle = await view.openWrite('/f', FLAGS);
    await handle.write(0, new Uint8Array(100).fill(7));
    // Located while the upload is open: the walk finds no entry under the name.
    const loc = await view.locate('/f');
    if (loc.kind !== 'entry') throw new Error('expected an entry location');
    expect(loc.found?.entry).toBeUndefined();
    // Another session's CLOSE commits and releases it before this request goes on.
    expect(await handle.commit()).toBe(true);
    view.forget(handle);
    const entry = await view.committedEntry(loc);
    expect(entry?.metadata.size).toBe(100);
    expect((await view.stat('/f', true)).size).toBe(100);
  });

  it('answers STAT and OPEN of a name nobody is writing from the walk alone', async () => {
    const view = await userTree();
    const handle = await view.openWrite('/g', FLAGS);
    await handle.write(0, new Uint8Array(5));
    await handle.commit();
    view.forget(handle);
    const loc = await view.locate('/g');
    if (loc.kind !== 'entry') throw new Error('expected an entry location');
    expect(loc.found?.entry?.metadata.size).toBe(5);
    expect(await view.committedEntry(loc)).toBe(loc.found?.entry);
  });
});
