import { RequestWorker } from '../../../util/request-worker.js';
import { workerModuleUrl } from '../../../util/worker-module.js';
import type { FsIoMessage, FsIoWorkerData, GetAnswer, PutAnswer } from './fs-io.worker.js';

/**
 * The FsChunkStore's disk work on a few worker threads, one request per
 * put or get.
 *
 * Why: through fs.promises a put was ten round trips between the event loop
 * and libuv's pool (stat, open, write, fdatasync, close, rename, and open,
 * fsync and close of the shard directory), each allocating promises and, for
 * a missing file, an error with a stack. On a small upload (five puts: the
 * chunk, the manifest, three directory nodes) that was most of the gateway's
 * time. Here a put is one message: the thread (fs-io.worker.ts) hashes the
 * bytes (so the SHA-256 of every chunk is off the event loop too), and makes
 * the same system calls synchronously, in the same order (fs-sync.ts). A get
 * reads the file and checks its hash on the thread and transfers the bytes
 * back without a copy.
 *
 * Write order and atomicity are the store's (fs-chunk-store.ts): the bytes go
 * to a fresh temp file, are fdatasynced, renamed into their shard, and the
 * shard directory is fsynced; a missing shard level is created and fsynced
 * into its parent first. fs-sync.ts is the one implementation of that order.
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
/** Staging slots per store: the file writer's default 4 chunks in flight, twice over. */
export const STAGING_SLOTS = 8;
/** A default chunk (1 MiB) sealed (+16) fits; directory nodes and manifests are far smaller. */
export const STAGING_SLOT_BYTES = 1024 * 1024 + 4096;

export interface FsIoOptions extends FsIoWorkerData {
  threads: number;
}

export class FsIo {
  readonly #workers: RequestWorker<FsIoMessage>[] = [];
  /** Slot ids each worker has been sent the memory of. */
  readonly #sent = new WeakMap<RequestWorker<FsIoMessage>, Set<number>>();
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
    let r: PutAnswer;
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
    const r = await this.#pick().request<GetAnswer>({ op: 'get', paths, digest });
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

  #pick(): RequestWorker<FsIoMessage> {
    const idle = this.#workers.find((w) => w.load === 0);
    if (idle) return idle;
    if (this.#workers.length < this.options.threads) {
      const { chunksDir, tmpDir, maxChunkBytes } = this.options;
      const data: FsIoWorkerData = { chunksDir, tmpDir, maxChunkBytes };
      const module = workerModuleUrl('./fs-io.worker.js', import.meta.url);
      const worker = new RequestWorker<FsIoMessage>(module, data, 'chunk store I/O thread', (dead) => {
        const i = this.#workers.indexOf(dead);
        if (i >= 0) this.#workers.splice(i, 1);
      });
      this.#workers.push(worker);
      return worker;
    }
    return this.#workers.reduce((a, b) => (b.load < a.load ? b : a));
  }
}
