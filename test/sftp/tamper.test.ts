import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCap, type DirectoryWriteCap, type FileReadCap } from '../../src/cap/index.js';
import { loadConfig } from '../../src/config/index.js';
import { openNode, type OpenNode } from '../../src/node/open.js';
import { parseAddress, type ChunkAddress } from '../../src/store/index.js';
import { flipObjectByte, type PackedObject, packedObjects } from '../helpers/packs.js';
import { makeTempDir, runCli, startCli, stopAllCli, type CliProcess, cliAt } from '../helpers/cli.js';
import { makeUserKey, Ssh2Sessions } from './gateway-fixture.js';
import { call, statusOf } from '../helpers/callback.js';

/**
 * Tampered store content under a running gateway (`capstan run`, fs chunk
 * store, LevelDB slots): a flipped byte in a data chunk, a manifest, a
 * directory node, and a forged slot record (written through the store API,
 * via the gateway's slot socket). Each read of the damaged object fails with
 * FAILURE (integrity), only that object: the same session, and the gateway,
 * go on serving everything else.
 */
const FAILURE = 4;

let tmp: { dir: string; cleanup: () => Promise<void> };
let nodeDir: string;
let gateway: CliProcess;
let node: OpenNode;
let root: DirectoryWriteCap;
let key: Buffer;
let port: number;
const sessions = new Ssh2Sessions();
const content = new Map<string, Buffer>();

const { ok } = cliAt(() => nodeDir);

const readAll = (sftp: SFTPWrapper, p: string): Promise<Buffer> => call<Buffer>((cb) => sftp.readFile(p, cb));

/** Where every object lies in its pack, read from the index before the gateway took the node. */
const objects = new Map<string, PackedObject>();

async function flipByte(address: ChunkAddress, at = 40): Promise<void> {
  const object = objects.get(address.toString());
  if (object === undefined) throw new Error(`no packed object ${address.toString()}`);
  await flipObjectByte(object, at);
}

async function fileCap(p: string): Promise<FileReadCap> {
  return (await node.tree.resolve(root, p.split('/'))).cap as FileReadCap;
}

async function expectOthersIntact(sftp: SFTPWrapper, except: string[]): Promise<void> {
  for (const [p, bytes] of content) {
    if (except.some((e) => p === e || p.startsWith(`${e}/`))) continue;
    expect((await readAll(sftp, `/${p}`)).equals(bytes), p).toBe(true);
  }
}

beforeAll(async () => {
  tmp = await makeTempDir('capstan-tamper-');
  nodeDir = path.join(tmp.dir, 'node');
  await ok(['init']);
  const cfg = path.join(nodeDir, 'capstan.cfg');
  await writeFile(cfg, (await readFile(cfg, 'utf8')).replace(/^chunk_size = .*$/m, 'chunk_size = 64KiB'));
  const rootText = (await ok(['mkdir'])).trim();
  root = parseCap(rootText) as DirectoryWriteCap;
  for (const d of ['sub', 'slotdir']) await ok(['mkdir', `${rootText}/${d}`]);
  for (const [p, size] of [
    ['chunk.bin', 300_000],
    ['manifest.bin', 100_000],
    ['good.bin', 200_000],
    ['sub/in-sub.txt', 100],
    ['slotdir/e.txt', 120],
  ] as const) {
    const bytes = randomBytes(size);
    const local = path.join(tmp.dir, 'upload');
    await writeFile(local, bytes);
    await ok(['put', local, `${rootText}/${p}`]);
    content.set(p, bytes);
  }
  const { keyFile } = await makeUserKey(tmp.dir);
  key = await readFile(keyFile);
  await ok(['account', 'add', 'alice', '--key', `${keyFile}.pub`, '--root', rootText]);
  for (const o of await packedObjects(nodeDir)) objects.set(o.address.toString(), o);
  gateway = startCli(['run', '-d', nodeDir, '--listen', '127.0.0.1:0']);
  port = Number((await gateway.waitFor(/^capstan listening on 127\.0\.0\.1:(\d+) /m, 'stderr', 60_000))[1]);
  node = await openNode(await loadConfig(nodeDir)); // slots through the gateway's socket
  expect(node.shared).toBe(true);
}, 90_000);

afterAll(async () => {
  sessions.endAll();
  await node?.close();
  await stopAllCli();
  await tmp.cleanup();
});

describe('tampered store content under a running gateway', () => {
  it('a chunk, a manifest, a directory node, a forged slot: FAILURE for that object only', async () => {
    const { sftp } = await sessions.open(port, 'alice', { privateKey: key });
    // `sub` is not read before its node is damaged: the gateway caches verified nodes (immutable, keyed by address).
    await expectOthersIntact(sftp, ['sub']);

    // A data chunk (the second of five): reading the file fails, the rest serve.
    const chunkList = (await node.tree.fileChunks(await fileCap('chunk.bin')))!;
    expect(chunkList.chunks.length).toBe(5);
    await flipByte(chunkList.chunks[1]!);
    expect(await statusOf(readAll(sftp, '/chunk.bin'))).toBe(FAILURE);
    await expectOthersIntact(sftp, ['chunk.bin', 'sub']);

    // A manifest: opening or reading fails.
    const manifest = (await node.tree.fileChunks(await fileCap('manifest.bin')))!.manifest;
    await flipByte(manifest, 10);
    expect(await statusOf(readAll(sftp, '/manifest.bin'))).toBe(FAILURE);
    await expectOthersIntact(sftp, ['chunk.bin', 'manifest.bin', 'sub']);

    // A directory node (not yet read by the gateway, so not in its cache).
    const sub = (await node.tree.resolve(root, ['sub'])).cap as DirectoryWriteCap;
    let subNode: string | undefined;
    for await (const n of node.tree.directory(sub).nodes()) subNode ??= n.address;
    await flipByte(parseAddress(subNode!));
    expect(await statusOf(call((cb) => sftp.readdir('/sub', cb)))).toBe(FAILURE);
    expect(await statusOf(readAll(sftp, '/sub/in-sub.txt'))).toBe(FAILURE);
    await expectOthersIntact(sftp, ['chunk.bin', 'manifest.bin', 'sub']);

    // A forged slot record: a valid next sequence number, one bit flipped in the signed bytes.
    const slotdir = (await node.tree.resolve(root, ['slotdir'])).cap as DirectoryWriteCap;
    const entry = (await node.slots.get(slotdir.storageIndex))!;
    const forged = Uint8Array.from(entry.record);
    forged[forged.length - 5]! ^= 0x80;
    await node.slots.compareAndSwap(slotdir.storageIndex, entry.seq, { seq: entry.seq + 1n, record: forged });
    expect(await statusOf(call((cb) => sftp.readdir('/slotdir', cb)))).toBe(FAILURE);
    expect(await statusOf(readAll(sftp, '/slotdir/e.txt'))).toBe(FAILURE);
    await expectOthersIntact(sftp, ['chunk.bin', 'manifest.bin', 'sub', 'slotdir']);

    // The root still lists and writes; a new session works; the gateway is alive.
    const listed = (await call<{ filename: string }[]>((cb) => sftp.readdir('/', cb))).map((e) => e.filename).sort();
    expect(listed).toEqual(['chunk.bin', 'good.bin', 'manifest.bin', 'slotdir', 'sub']);
    await call((cb) => sftp.writeFile('/after.txt', 'still serving', cb));
    const fresh = await sessions.open(port, 'alice', { privateKey: key });
    expect((await readAll(fresh.sftp, '/after.txt')).toString()).toBe('still serving');
    expect(gateway.child.exitCode).toBeNull();
    // And check names exactly the damaged objects.
    const check = await runCli(['-d', nodeDir, 'check', '--verify', root.toString()]);
    expect(check.code).not.toBe(0);
    expect(check.stdout).toMatch(/: 4 problems\n$/);
  }, 60_000);
});
