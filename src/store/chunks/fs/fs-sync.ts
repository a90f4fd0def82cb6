import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { addressOf } from '../../address.js';
import { readFullyAtSync } from '../../../util/read-fully.js';
import type { ChunkAddress } from '../chunk-store.js';
import { errno } from './fs-files.js';
import { chunkPathIn, legacyChunkPathIn } from './fs-layout.js';

/**
 * The system calls of FsChunkStore's put, get and place, synchronous and in
 * the order fs-chunk-store.ts states: one implementation, which its I/O
 * threads (fs-io.worker.ts) run, one call per request. Nothing here runs on
 * the event loop (synchronous calls would block it); the store's rarer
 * operations (stat, delete, list, gc) use fs.promises in fs-chunk-store.ts.
 */

/** errno-style code of a chunk that fails its size, length or hash check. */
export const INTEGRITY_CODE = 'CAPSTAN_INTEGRITY';

function integrityError(): Error {
  return Object.assign(new Error('chunk failed its check'), { code: INTEGRITY_CODE });
}

function sizeOf(file: string): number | undefined {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates a missing shard directory and, when syncing, makes its entry in the parent durable first. */
function makeShard(shard: string, sync: boolean): void {
  try {
    fs.mkdirSync(shard);
    if (sync) syncDirectory(path.dirname(shard));
  } catch (err) {
    if (errno(err) !== 'EEXIST') throw err;
  }
}

/** Renames `temp` to `final`, creating its shard as needed, then syncs the shard directory. */
export function placeSync(temp: string, final: string, sync: boolean): void {
  const shard = path.dirname(final);
  try {
    fs.renameSync(temp, final);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
    makeShard(shard, sync);
    fs.renameSync(temp, final);
  }
  if (sync) syncDirectory(shard);
}

/**
 * Stores `bytes` under their address in layout v2 (fs-layout.ts) and
 * answers it: a fresh temp file in `tmpDir`, written, fdatasynced, closed,
 * placed. An existing copy of the right size, v2 or v1, is touched instead
 * (see FsChunkStore.put for why size and a touch are enough).
 */
export function putChunkSync(chunksDir: string, tmpDir: string, bytes: Uint8Array, fsync: boolean): ChunkAddress {
  const address = addressOf(bytes);
  const final = chunkPathIn(chunksDir, address);
  for (const existing of [final, legacyChunkPathIn(chunksDir, address)]) {
    if (sizeOf(existing) !== bytes.length) continue;
    try {
      const now = new Date();
      fs.utimesSync(existing, now, now);
      return address;
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
    }
  }
  const temp = path.join(tmpDir, `${address.toString()}.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    const fd = fs.openSync(temp, 'wx');
    try {
      for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
      if (fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    placeSync(temp, final, fsync);
  } catch (err) {
    try {
      fs.rmSync(temp, { force: true });
    } catch {}
    throw err;
  }
  return address;
}

/** Opens the first of `paths` that exists (v2, then v1); ENOENT when none does. */
function openFirst(paths: readonly string[]): number {
  for (let i = 0; ; i++) {
    const file = paths[i];
    if (file === undefined) throw Object.assign(new Error('no chunk file'), { code: 'ENOENT' });
    try {
      return fs.openSync(file, 'r');
    } catch (err) {
      if (errno(err) !== 'ENOENT' || i === paths.length - 1) throw err;
    }
  }
}

/**
 * The bytes of the first of `paths` that exists, checked against `digest`
 * (their SHA-256); INTEGRITY_CODE when they are too big, short or wrong.
 * The result owns its whole ArrayBuffer, so it can be transferred.
 */
export function readChunkSync(paths: readonly string[], digest: Uint8Array, maxChunkBytes: number): Buffer<ArrayBuffer> {
  const fd = openFirst(paths);
  try {
    const size = fs.fstatSync(fd).size;
    // Nothing we wrote is this big; do not let a planted file make us allocate it.
    if (size > maxChunkBytes) throw integrityError();
    const bytes = Buffer.allocUnsafeSlow(size);
    // A short read (the file shrank under us) is never a short result.
    if (readFullyAtSync(fd, bytes, 0) !== size) throw integrityError();
    if (!createHash('sha256').update(bytes).digest().equals(digest)) throw integrityError();
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}
