import { describe, expect, it } from 'vitest';
import { type DirectoryWriteCap, LiteralCap, SymlinkTarget } from '../../src/cap/index.js';
import { MemoryChunkStore } from '../../src/store/chunks/memory.js';
import { MemorySlotStore } from '../../src/store/slots/memory.js';
import { createTree, MAX_SYMLINK_FOLLOWS, resolvePath, type Tree } from '../../src/tree/index.js';

/** src/tree/symlinks.ts: links resolved as inside a chroot at the walk's base. */

const meta = { size: 1, mtimeMs: 0, ctimeMs: 0 };

async function setup(): Promise<{
  tree: Tree;
  root: DirectoryWriteCap;
  link: (dir: DirectoryWriteCap, name: string, target: string) => Promise<unknown>;
}> {
  const tree = createTree({ chunks: new MemoryChunkStore(), slots: new MemorySlotStore() });
  const root = await tree.createDirectory();
  const link = (dir: DirectoryWriteCap, name: string, target: string) =>
    tree.directory(dir).link(name, new SymlinkTarget(Buffer.from(target)), meta);
  return { tree, root, link };
}

const names = (r: { frames: readonly { name: string }[]; name?: string | undefined }) => [
  ...r.frames.map((f) => f.name),
  ...(r.name !== undefined ? [r.name] : []),
];

describe('resolving through symbolic links', () => {
  it('.. stops at the base, an absolute target starts at the base, /uri/ is only names', async () => {
    const { tree, root, link } = await setup();
    const a = await tree.directory(root).mkdir('a');
    const b = await tree.directory(a).mkdir('b');
    await tree.directory(root).link('top', new LiteralCap(Uint8Array.of(1)), meta);
    await link(b, 'up', '../../../../../top');
    await link(b, 'abs', '/top');
    await link(b, 'dir', '..');
    await link(root, 'bycap', `/uri/${root.toString()}/top`);
    expect(names(await resolvePath(tree, root, ['a', 'b', 'up'], true))).toEqual(['top']);
    expect(names(await resolvePath(tree, root, ['a', 'b', 'abs'], true))).toEqual(['top']);
    expect(names(await resolvePath(tree, root, ['a', 'b', 'dir', 'b', 'up'], true))).toEqual(['top']);
    expect(names(await resolvePath(tree, root, ['a', 'b', 'up'], false))).toEqual(['a', 'b', 'up']);
    // `/uri/CAP/top` is looked up as the names `uri`, `CS1:…`, `top` from the base: there is no `uri`, and the cap is never used.
    await expect(resolvePath(tree, root, ['bycap'], true)).rejects.toMatchObject({ name: 'NotFoundError' });
    // Starting below the root, the base is the walk's own base: a link cannot climb out of it.
    expect(names(await resolvePath(tree, a, ['b', 'up'], true))).toEqual(['top']);
    await tree.close();
  });

  it(`follows a chain of ${MAX_SYMLINK_FOLLOWS} links and refuses one more; a loop is TooManyLinksError`, async () => {
    const { tree, root, link } = await setup();
    await tree.directory(root).link('f', new LiteralCap(Uint8Array.of(1)), meta);
    await link(root, 'l0', 'f');
    for (let i = 1; i <= MAX_SYMLINK_FOLLOWS; i++) await link(root, `l${i}`, `l${i - 1}`);
    expect(names(await resolvePath(tree, root, [`l${MAX_SYMLINK_FOLLOWS - 1}`], true))).toEqual(['f']);
    await expect(resolvePath(tree, root, [`l${MAX_SYMLINK_FOLLOWS}`], true)).rejects.toMatchObject({ name: 'TooManyLinksError' });
    await link(root, 'self', 'self');
    await expect(resolvePath(tree, root, ['self', 'x'], true)).rejects.toMatchObject({ name: 'TooManyLinksError' });
    await tree.close();
  });

  it('a target that is not UTF-8 names nothing; a dangling link resolves to its missing target', async () => {
    const { tree, root } = await setup();
    await tree.directory(root).link('latin1', new SymlinkTarget(Uint8Array.of(0x63, 0xe9)), meta);
    await tree.directory(root).link('dangling', new SymlinkTarget(Buffer.from('no/such')), meta);
    await tree.directory(root).link('missing', new SymlinkTarget(Buffer.from('nothing')), meta);
    await expect(resolvePath(tree, root, ['latin1'], true)).rejects.toMatchObject({ name: 'NotFoundError' });
    await expect(resolvePath(tree, root, ['dangling'], true)).rejects.toMatchObject({ name: 'NotFoundError' });
    const missing = await resolvePath(tree, root, ['missing'], true);
    expect(names(missing)).toEqual(['nothing']);
    expect(missing.entry).toBeUndefined();
    await tree.close();
  });
});
