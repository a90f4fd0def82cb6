import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryReadCap, DirectoryWriteCap, FileReadCap, LiteralCap, UnknownCap, encodeBase32, type Cap } from '../../src/cap/index.js';
import { randomBytes } from '../../src/crypto/index.js';
import type { DirEntry, Directory, EntryMetadata, Tree } from '../../src/tree/api.js';
import { createTree } from '../../src/tree/index.js';
import { treeBackends, type TreeStores } from '../helpers/tree-stores.js';

const backends = treeBackends();

const meta = (size = 0, extra: Partial<EntryMetadata> = {}): EntryMetadata => ({
  size,
  mtimeMs: 1_700_000_000_000,
  ctimeMs: 1_700_000_000_500,
  ...extra,
});
const fileCap = (size = 1234): FileReadCap => new FileReadCap(randomBytes(32), randomBytes(32), size);

async function entries(dir: Directory): Promise<DirEntry[]> {
  const out: DirEntry[] = [];
  for await (const e of dir.list()) out.push(e);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
async function names(dir: Directory): Promise<string[]> {
  return (await entries(dir)).map((e) => e.name);
}
const rejectsNamed = (p: Promise<unknown>, name: string) => expect(p).rejects.toMatchObject({ name });

describe.each(backends)('directories on $name', (backend) => {
  let stores: TreeStores;
  let tree: Tree;
  let root: DirectoryWriteCap;
  let dir: Directory;

  beforeEach(async () => {
    stores = await backend.open();
    tree = createTree({ chunks: stores.chunks, slots: stores.slots });
    root = await tree.createDirectory();
    dir = tree.directory(root);
  });
  afterEach(async () => {
    await tree.close();
    await stores.close();
  });

  it('a new directory is empty and writable, at slot seq 1', async () => {
    expect(dir.writable).toBe(true);
    expect(await dir.count()).toBe(0);
    expect(await names(dir)).toEqual([]);
    expect(await dir.lookup('nothing')).toBeUndefined();
    expect((await stores.slots.get(root.storageIndex))?.seq).toBe(1n);
  });

  it('link, lookup, list and count round-trip caps and metadata', async () => {
    const a = fileCap(10);
    const lit = new LiteralCap(new TextEncoder().encode('hello'));
    const empty = new LiteralCap(new Uint8Array(0));
    const unknown = new UnknownCap('URI:SSK:future-format:abc');
    await dir.link('a.txt', a, meta(10, { atimeMs: 5, noWrite: true }));
    await dir.link('lit', lit, meta(5));
    await dir.link('empty', empty, meta(0));
    await dir.link('future', unknown, meta(0));
    expect(await dir.count()).toBe(4);
    const found = await dir.lookup('a.txt');
    expect(found?.cap).toBeInstanceOf(FileReadCap);
    expect(found?.cap.toString()).toBe(a.toString());
    expect(found?.metadata).toEqual(meta(10, { atimeMs: 5, noWrite: true }));
    expect((await dir.lookup('lit'))?.cap.toString()).toBe(lit.toString());
    expect((await dir.lookup('empty'))?.cap).toBeInstanceOf(LiteralCap);
    const future = await dir.lookup('future');
    expect(future?.cap).toBeInstanceOf(UnknownCap);
    expect(future?.cap.toString()).toBe('URI:SSK:future-format:abc');
    expect(await names(dir)).toEqual(['a.txt', 'empty', 'future', 'lit']);
  });

  it('link refuses an existing name unless overwrite is set', async () => {
    await dir.link('x', fileCap(1), meta(1));
    await rejectsNamed(dir.link('x', fileCap(2), meta(2)), 'AlreadyExistsError');
    const replacement = fileCap(3);
    await dir.link('x', replacement, meta(3), { overwrite: true });
    expect((await dir.lookup('x'))?.cap.toString()).toBe(replacement.toString());
    expect(await dir.count()).toBe(1);
  });

  it('unlink removes and returns the entry; a missing name is NotFoundError', async () => {
    const cap = fileCap();
    await dir.link('gone', cap, meta(7));
    await dir.link('stays', fileCap(), meta());
    const removed = await dir.unlink('gone');
    expect(removed.name).toBe('gone');
    expect(removed.cap.toString()).toBe(cap.toString());
    expect(removed.metadata.size).toBe(7);
    expect(await names(dir)).toEqual(['stays']);
    await rejectsNamed(dir.unlink('gone'), 'NotFoundError');
  });

  it('setMetadata merges a patch and keeps the cap', async () => {
    const cap = fileCap();
    await dir.link('f', cap, meta(1, { atimeMs: 9 }));
    const updated = await dir.setMetadata('f', { mtimeMs: 42, size: 2 });
    expect(updated.metadata).toEqual({ size: 2, mtimeMs: 42, ctimeMs: 1_700_000_000_500, atimeMs: 9 });
    expect((await dir.lookup('f'))?.metadata).toEqual(updated.metadata);
    expect((await dir.lookup('f'))?.cap.toString()).toBe(cap.toString());
    await rejectsNamed(dir.setMetadata('missing', { size: 1 }), 'NotFoundError');
    await rejectsNamed(dir.setMetadata('f', { size: -1 }), 'InvalidInputError');
  });

  it('rename moves within the directory in one slot update, with overwrite semantics', async () => {
    const a = fileCap(1);
    const b = fileCap(2);
    await dir.link('a', a, meta(1));
    await dir.link('b', b, meta(2));
    const before = (await stores.slots.get(root.storageIndex))!.seq;
    await dir.rename('a', 'c');
    expect((await stores.slots.get(root.storageIndex))!.seq).toBe(before + 1n);
    expect(await names(dir)).toEqual(['b', 'c']);
    expect((await dir.lookup('c'))?.cap.toString()).toBe(a.toString());
    await rejectsNamed(dir.rename('c', 'b'), 'AlreadyExistsError');
    await dir.rename('c', 'b', { overwrite: true });
    expect(await names(dir)).toEqual(['b']);
    expect((await dir.lookup('b'))?.cap.toString()).toBe(a.toString());
    await rejectsNamed(dir.rename('nope', 'x'), 'NotFoundError');
  });

  it('rename onto itself is a no-op that writes nothing; onto another spelling it is a rename', async () => {
    await dir.link('caf\u00e9', fileCap(), meta());
    const before = (await stores.slots.get(root.storageIndex))!.seq;
    await dir.rename('caf\u00e9', 'caf\u00e9');
    expect((await stores.slots.get(root.storageIndex))!.seq).toBe(before);
    await rejectsNamed(dir.rename('cafe\u0301', 'caf\u00e9'), 'NotFoundError');
    await dir.rename('caf\u00e9', 'cafe\u0301');
    expect(await names(dir)).toEqual(['cafe\u0301']);
  });

  it('executable: set and cleared by setMetadata, kept by a link over it with keepExecutable, dropped without', async () => {
    await dir.link('run', fileCap(1), meta(1, { executable: true }));
    expect((await dir.lookup('run'))?.metadata.executable).toBe(true);
    await dir.link('run', fileCap(2), meta(2), { overwrite: true, keepExecutable: true });
    expect((await dir.lookup('run'))?.metadata).toEqual(meta(2, { executable: true }));
    await dir.setMetadata('run', { executable: false });
    expect((await dir.lookup('run'))?.metadata.executable).toBeUndefined();
    await dir.setMetadata('run', { executable: true });
    await dir.link('run', fileCap(3), meta(3), { overwrite: true });
    expect((await dir.lookup('run'))?.metadata.executable).toBeUndefined();
    // Nothing to keep from a new name; the entry's own bit wins either way.
    await dir.link('new', fileCap(4), meta(4), { keepExecutable: true });
    expect((await dir.lookup('new'))?.metadata.executable).toBeUndefined();
  });

  it('noWrite entries refuse replacement (link overwrite, rename over) but allow chmod back and unlink', async () => {
    await dir.link('ro', fileCap(), meta(1, { noWrite: true }));
    await dir.link('other', fileCap(), meta(2));
    await rejectsNamed(dir.link('ro', fileCap(), meta(), { overwrite: true }), 'PermissionError');
    await rejectsNamed(dir.rename('other', 'ro', { overwrite: true }), 'PermissionError');
    // Renaming the read-only entry itself is allowed (the name's directory is writable).
    await dir.rename('ro', 'ro2');
    await dir.setMetadata('ro2', { noWrite: false });
    expect((await dir.lookup('ro2'))?.metadata.noWrite).toBeUndefined();
    await dir.link('ro2', fileCap(), meta(), { overwrite: true });
    await dir.setMetadata('ro2', { noWrite: true });
    await dir.unlink('ro2');
    expect(await names(dir)).toEqual(['other']);
  });

  it('mkdir makes a linked, writable child; an existing name is AlreadyExistsError', async () => {
    const child = await dir.mkdir('sub', { mtimeMs: 77 });
    expect(child).toBeInstanceOf(DirectoryWriteCap);
    const entry = await dir.lookup('sub');
    expect(entry?.cap).toBeInstanceOf(DirectoryWriteCap);
    expect(entry?.cap.toString()).toBe(child.toString());
    expect(entry?.metadata.mtimeMs).toBe(77);
    expect(entry?.metadata.size).toBe(0);
    await tree.directory(child).link('inner', fileCap(), meta());
    expect(await names(tree.directory(child))).toEqual(['inner']);
    await rejectsNamed(dir.mkdir('sub'), 'AlreadyExistsError');
    await dir.link('file', fileCap(), meta());
    await rejectsNamed(dir.mkdir('file'), 'AlreadyExistsError');
  });

  it('a read-cap view lists and looks up, refuses every mutation, and hands out only read caps', async () => {
    const child = await dir.mkdir('sub');
    const file = fileCap();
    await dir.link('f', file, meta());
    const ro = tree.directory(root.readonly());
    expect(ro.writable).toBe(false);
    expect(await names(ro)).toEqual(['f', 'sub']);
    const sub = await ro.lookup('sub');
    expect(sub?.cap).toBeInstanceOf(DirectoryReadCap);
    expect(sub?.cap.toString()).toBe(child.readonly().toString());
    expect((await ro.lookup('f'))?.cap.toString()).toBe(file.toString());
    for (const e of await entries(ro)) expect(e.cap.isWritable).toBe(false);
    // Nothing the view hands out carries the child's write secret.
    const secret = encodeBase32(child.writeSecret);
    expect(JSON.stringify(await entries(ro), (_k, v) => (v instanceof Uint8Array ? encodeBase32(v) : v))).not.toContain(secret);
    await rejectsNamed(ro.link('x', fileCap(), meta()), 'PermissionError');
    await rejectsNamed(ro.unlink('f'), 'PermissionError');
    await rejectsNamed(ro.setMetadata('f', { size: 1 }), 'PermissionError');
    await rejectsNamed(ro.rename('f', 'g'), 'PermissionError');
    await rejectsNamed(ro.mkdir('new'), 'PermissionError');
    // Transitively read-only: the child opened from the read view is read-only too.
    await rejectsNamed(tree.directory(sub!.cap as DirectoryReadCap).link('x', fileCap(), meta()), 'PermissionError');
    expect(await names(dir)).toEqual(['f', 'sub']);
  });

  it('names are kept byte for byte: NFD and NFC spellings are two entries, each found only by its own bytes', async () => {
    const nfd = 'Cafe\u0301 men\u0303u';
    const nfc = 'Caf\u00e9 me\u00f1u';
    await dir.link(nfd, fileCap(), meta());
    expect(await names(dir)).toEqual([nfd]);
    expect(await dir.lookup(nfc)).toBeUndefined();
    expect((await dir.lookup(nfd))?.name).toBe(nfd);
    await dir.link(nfc, fileCap(), meta());
    expect((await names(dir)).sort()).toEqual([nfc, nfd].sort());
    await dir.unlink(nfd);
    expect(await names(dir)).toEqual([nfc]);
  });

  it('rejects bad names with InvalidInputError on every operation', async () => {
    const bad = ['', '.', '..', 'a/b', '/', 'nul\0byte', 'lone\uD800', 'x'.repeat(256), '\u00e9'.repeat(128)];
    for (const name of bad) {
      await rejectsNamed(dir.link(name, fileCap(), meta()), 'InvalidInputError');
      await rejectsNamed(dir.lookup(name), 'InvalidInputError');
      await rejectsNamed(dir.unlink(name), 'InvalidInputError');
      await rejectsNamed(dir.mkdir(name), 'InvalidInputError');
      await rejectsNamed(dir.rename('a', name), 'InvalidInputError');
    }
    await dir.link('x'.repeat(255), fileCap(), meta());
    await dir.link('\u00e9'.repeat(127), fileCap(), meta());
    expect(await dir.count()).toBe(2);
  });

  it('rejects malformed metadata and unstorable caps', async () => {
    await rejectsNamed(dir.link('m', fileCap(), { size: 1.5, mtimeMs: 0, ctimeMs: 0 }), 'InvalidInputError');
    await rejectsNamed(dir.link('m', fileCap(), { size: 1, mtimeMs: Number.NaN, ctimeMs: 0 }), 'InvalidInputError');
    await rejectsNamed(dir.link('m', new UnknownCap('has/slash') as Cap, meta()), 'InvalidInputError');
    await rejectsNamed(dir.link('m', new UnknownCap('x'.repeat(600)) as Cap, meta()), 'InvalidInputError');
    expect(await dir.count()).toBe(0);
  });

  it('a multi-level directory lists every entry exactly once, and a second Tree sees it at once', async () => {
    const n = 300;
    for (let i = 0; i < n; i++) await dir.link(`entry-${i}`, fileCap(i), meta(i));
    const other = createTree({ chunks: stores.chunks, slots: stores.slots });
    const seen = await names(other.directory(root));
    expect(seen.length).toBe(n);
    expect(new Set(seen).size).toBe(n);
    expect(await other.directory(root.readonly()).count()).toBe(n);
    await other.directory(root).unlink('entry-7');
    expect(await dir.lookup('entry-7')).toBeUndefined();
    expect(await dir.count()).toBe(n - 1);
    await other.close();
  });

  it('a directory with no slot is NotFoundError', async () => {
    const stranger = new DirectoryWriteCap(randomBytes(32));
    await rejectsNamed(tree.directory(stranger).count(), 'NotFoundError');
    await rejectsNamed(tree.directory(stranger.readonly()).lookup('x'), 'NotFoundError');
  });

  it('honours an aborted signal', async () => {
    const ac = new AbortController();
    ac.abort();
    await rejectsNamed(dir.link('x', fileCap(), meta(), { signal: ac.signal }), 'AbortError');
    await rejectsNamed(dir.count({ signal: ac.signal }), 'AbortError');
  });
});
