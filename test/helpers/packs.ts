import { open } from 'node:fs/promises';
import path from 'node:path';
import { Level } from 'level';
import { packFile } from '../../src/store/packs/pack-files.js';
import { LevelObjectIndex } from '../../src/store/packs/level-index.js';
import type { IndexEntry } from '../../src/store/packs/index-store.js';

/**
 * Damage for tests of check and recovery on the embedded default (storage
 * engine v3, docs/spec/packs.md): objects live in pack files under
 * <node>/store/chunks/packs and the object index in the node's LevelDB.
 * Only while no process holds the node.
 */
export interface PackedObject extends IndexEntry {
  file: string;
}

/** Every indexed object of the node, largest first (data chunks before manifests and directory nodes). */
export async function packedObjects(nodeDir: string): Promise<PackedObject[]> {
  return withIndex(nodeDir, async (index) => {
    const out: PackedObject[] = [];
    for await (const e of index.list()) out.push({ ...e, file: packFile(packsDir(nodeDir), e.location.pack) });
    return out.sort((a, b) => b.location.length - a.location.length);
  });
}

/** Flips one byte of an object where it lies in its pack: only a verifying read notices. */
export async function flipObjectByte(object: PackedObject, at: number): Promise<void> {
  const fd = await open(object.file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    const position = object.location.offset + at;
    await fd.read(byte, 0, 1, position);
    byte[0] = byte[0]! ^ 0xff;
    await fd.write(byte, 0, 1, position);
  } finally {
    await fd.close();
  }
}

/** Loses an object: its index entry goes, as if the bytes had never been stored. */
export async function loseObject(nodeDir: string, object: PackedObject): Promise<void> {
  await withIndex(nodeDir, (index) => index.removeIf(object.address, object.location));
}

function packsDir(nodeDir: string): string {
  return path.join(nodeDir, 'store/chunks/packs');
}

async function withIndex<T>(nodeDir: string, work: (index: LevelObjectIndex) => Promise<T>): Promise<T> {
  const db = new Level<Uint8Array, Uint8Array>(path.join(nodeDir, 'store/slots'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    return await work(new LevelObjectIndex(db));
  } finally {
    await db.close();
  }
}

/** Makes every indexed object look `ms` older than now (gc's grace counts from an object's last put). */
export async function agePackedObjects(nodeDir: string, ms: number): Promise<number> {
  const lastPutSec = Math.floor((Date.now() - ms) / 1000);
  return withIndex(nodeDir, async (index) => {
    const entries: IndexEntry[] = [];
    for await (const e of index.list()) entries.push({ ...e, lastPutSec });
    await index.putMany(entries);
    return entries.length;
  });
}
