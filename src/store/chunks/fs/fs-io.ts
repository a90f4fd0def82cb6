import { RequestWorker } from '../../../util/request-worker.js';

/**
 * The FsChunkStore's disk work on a few worker threads, one request per
 * put or get.
 *
 * Why: through fs.promises a put was ten round trips between the event loop
 * and libuv's pool (stat, open, write, fdatasync, close, rename, and open,
 * fsync and close of the shard directory), each allocating promises and, for
 * a missing file, an error with a stack. On a small upload (five puts: the
 * chunk, the manifest, three directory nodes) that was most of the gateway's
 * time. Here a put is one message: the thread hashes the bytes (so the
 * SHA-256 of every chunk is off the event loop too), and makes the same
 * system calls synchronously, in the same order. A get reads the file and
 * checks its hash on the thread and transfers the bytes back without a copy.
 *
 * Write order and atomicity are the store's (fs-chunk-store.ts): the bytes go
 * to a fresh temp file, are fdatasynced, renamed into their shard, and the
 * shard directory is fsynced; a missing shard level is created and fsynced
 * into its parent first.
 *
 * Memory: a put's bytes are copied into one of a few staging slots of
 * shared memory, made once, rather than into a fresh buffer transferred to
 * the thread. A fresh 1 MiB buffer per chunk died on the I/O thread, whose
 * tiny heap let V8 keep about 64 MiB of such garbage per thread before
 * collecting it (peak RSS of a 1 GiB put rose by about 50 MiB), and on the main
 * thread every external allocation counts towards the next full GC. A put
 * that finds no free slot, or does not fit one, falls back to that copy.
 *
 * Bounds: `threads` workers, created on first use; each does one request at
 * a time, so `threads` is the store's disk concurrency (libuv's pool, which
 * the promises API used, has 4). Requests queue in the worker's message port;
 * callers bound what they keep in flight (the file writer: a few chunks).
 * STAGING_SLOTS × STAGING_SLOT_BYTES of shared memory at most, touched only
 * as far as puts fill it.
 */
const WORKER_CODE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { chunksDir, tmpDir, maxChunkBytes } = workerData;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
// CIDv1 prefix: version 1, raw codec 0x55, sha2-256 0x12, 32 bytes.
const CID_PREFIX = Buffer.from([0x01, 0x55, 0x12, 0x20]);

// The CID's multibase base32 string: 'b' then RFC 4648 lowercase, unpadded.
function cidName(digest) {
  const bytes = Buffer.concat([CID_PREFIX, digest]);
  let out = 'b', value = 0, bits = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) { bits -= 5; out += BASE32[(value >>> bits) & 31]; }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}
// Layout v2 (fs-chunk-store.ts), and v1 one level deeper, still honoured by the dedup check.
function chunkPath(name) {
  return path.join(chunksDir, name.slice(-3, -1), name);
}
function legacyChunkPath(name) {
  return path.join(chunksDir, name.slice(-3, -1), name.slice(-5, -3), name);
}
function errnoOf(err) { return err && typeof err.code === 'string' ? err.code : undefined; }
function sizeOf(file) {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}
function syncDirectory(dir) {
  const fd = fs.openSync(dir, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
function makeShard(shard, sync) {
  try {
    fs.mkdirSync(shard);
    if (sync) syncDirectory(path.dirname(shard));
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err;
  }
}
function place(temp, final, sync) {
  const shard = path.dirname(final);
  try {
    fs.renameSync(temp, final);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
    makeShard(shard, sync);
    fs.renameSync(temp, final);
  }
  if (sync) syncDirectory(shard);
}
// Staging slots (shared memory the main thread copies puts into), by id.
const slots = new Map();
function put(m) {
  if (m.shared) slots.set(m.slot, m.shared);
  const bytes = m.slot === undefined ? Buffer.from(m.bytes) : Buffer.from(slots.get(m.slot), 0, m.length);
  const digest = crypto.createHash('sha256').update(bytes).digest();
  const name = cidName(digest);
  const final = chunkPath(name);
  const reply = () => {
    const out = new Uint8Array(digest).buffer;
    parentPort.postMessage({ id: m.id, digest: out }, [out]);
  };
  // Dedup: see FsChunkStore.put for why size and a touch are enough.
  for (const existing of [final, legacyChunkPath(name)]) {
    if (sizeOf(existing) !== bytes.length) continue;
    try {
      const now = new Date();
      fs.utimesSync(existing, now, now);
      return reply();
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
  }
  const temp = path.join(tmpDir, name + '.' + process.pid + '.' + crypto.randomBytes(6).toString('hex'));
  try {
    const fd = fs.openSync(temp, 'wx');
    try {
      for (let off = 0; off < bytes.length; ) off += fs.writeSync(fd, bytes, off, bytes.length - off);
      if (m.fsync) fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    place(temp, final, m.fsync);
  } catch (err) {
    try { fs.rmSync(temp, { force: true }); } catch {}
    throw err;
  }
  reply();
}
// The first of m.paths that exists (v2, then v1).
function openFirst(paths) {
  for (let i = 0; ; i++) {
    try {
      return fs.openSync(paths[i], 'r');
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT' || i === paths.length - 1) throw err;
    }
  }
}
function get(m) {
  const fd = openFirst(m.paths);
  try {
    const size = fs.fstatSync(fd).size;
    // Nothing we wrote is this big; do not let a planted file make us allocate it.
    if (size > maxChunkBytes) throw integrity();
    const bytes = Buffer.allocUnsafeSlow(size);
    let filled = 0;
    while (filled < size) {
      const n = fs.readSync(fd, bytes, filled, size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    // A short read (the file shrank under us) is never a short result.
    if (filled !== size) throw integrity();
    const digest = crypto.createHash('sha256').update(bytes).digest();
    if (!digest.equals(Buffer.from(m.digest))) throw integrity();
    parentPort.postMessage({ id: m.id, bytes: bytes.buffer }, [bytes.buffer]);
  } finally {
    fs.closeSync(fd);
  }
}
function integrity() { return Object.assign(new Error('chunk failed its check'), { code: 'CAPSTAN_INTEGRITY' }); }
parentPort.on('message', (m) => {
  try {
    if (m.op === 'put') {
      put(m);
      // A put that came as its own buffer (no staging slot was free) left it
      // dead here; collect it now rather than after ~64 MiB of them (gc
      // exists under --expose-gc, see src/cli/node-flags.ts).
      if (m.slot === undefined && typeof gc === 'function') gc({ type: 'minor' });
    }
    else if (m.op === 'get') get(m);
    else if (m.op === 'place') { place(m.temp, m.final, m.fsync); parentPort.postMessage({ id: m.id }); }
    else throw new Error('unknown request');
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.message) || err), code: errnoOf(err) });
  }
});
`;

/** errno-style code the I/O thread gives a chunk that fails its size, length or hash check. */
export const INTEGRITY_CODE = 'CAPSTAN_INTEGRITY';

/** Staging slots per store: the file writer's default 4 chunks in flight, twice over. */
export const STAGING_SLOTS = 8;
/** A default chunk (1 MiB) sealed (+16) fits; directory nodes and manifests are far smaller. */
export const STAGING_SLOT_BYTES = 1024 * 1024 + 4096;

export interface FsIoOptions {
  chunksDir: string;
  tmpDir: string;
  maxChunkBytes: number;
  threads: number;
}

export class FsIo {
  readonly #workers: RequestWorker[] = [];
  /** Slot ids each worker has been sent the memory of. */
  readonly #sent = new WeakMap<RequestWorker, Set<number>>();
  readonly #slots: SharedArrayBuffer[] = [];
  readonly #freeSlots: number[] = [];

  constructor(private readonly options: FsIoOptions) {}

  /**
   * Stores a copy of `bytes` and answers their SHA-256; the caller's buffer
   * is read only before this returns its promise. Errors carry the errno
   * `code` of the call that failed.
   */
  async put(bytes: Uint8Array, fsync: boolean): Promise<Uint8Array> {
    const worker = this.#pick();
    const slot = this.#takeSlot(bytes.length);
    let r: { digest: ArrayBuffer };
    if (slot === undefined) {
      const copy = new Uint8Array(bytes);
      r = await worker.request({ op: 'put', bytes: copy.buffer, fsync }, [copy.buffer]);
    } else {
      new Uint8Array(this.#slots[slot]!, 0, bytes.length).set(bytes);
      const sent = this.#sent.get(worker) ?? new Set<number>();
      this.#sent.set(worker, sent);
      const shared = sent.has(slot) ? undefined : this.#slots[slot];
      sent.add(slot);
      try {
        r = await worker.request({ op: 'put', slot, shared, length: bytes.length, fsync });
      } finally {
        this.#freeSlots.push(slot);
      }
    }
    return new Uint8Array(r.digest);
  }

  #takeSlot(length: number): number | undefined {
    if (length > STAGING_SLOT_BYTES) return undefined;
    const free = this.#freeSlots.pop();
    if (free !== undefined) return free;
    if (this.#slots.length >= STAGING_SLOTS) return undefined;
    this.#slots.push(new SharedArrayBuffer(STAGING_SLOT_BYTES));
    return this.#slots.length - 1;
  }

  /**
   * The bytes of the first of `paths` that exists, checked against `digest`;
   * code ENOENT when none does, INTEGRITY_CODE when they fail.
   */
  async get(paths: string[], digest: Uint8Array): Promise<Uint8Array> {
    const r = await this.#pick().request<{ bytes: ArrayBuffer }>({ op: 'get', paths, digest });
    return new Uint8Array(r.bytes);
  }

  /** Renames `temp` to `final`, creating its shard as needed, and syncs as a put does. */
  async place(temp: string, final: string, fsync: boolean): Promise<void> {
    await this.#pick().request({ op: 'place', temp, final, fsync });
  }

  async close(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }

  #pick(): RequestWorker {
    const idle = this.#workers.find((w) => w.load === 0);
    if (idle) return idle;
    if (this.#workers.length < this.options.threads) {
      const { chunksDir, tmpDir, maxChunkBytes } = this.options;
      const worker = new RequestWorker(WORKER_CODE, { chunksDir, tmpDir, maxChunkBytes }, 'chunk store I/O thread', (dead) => {
        const i = this.#workers.indexOf(dead);
        if (i >= 0) this.#workers.splice(i, 1);
      });
      this.#workers.push(worker);
      return worker;
    }
    return this.#workers.reduce((a, b) => (b.load < a.load ? b : a));
  }
}
