import { availableParallelism } from 'node:os';
import { RequestWorker } from '../util/request-worker.js';
import { workerModuleUrl } from '../util/worker-module.js';
import { AeadError, GCM_TAG_BYTES, openConvergentInPlace } from './aead.js';
import { sha256 } from './kdf.js';
import type { OffloadAnswer, OffloadMessage, SharedDigestAnswer, SharedOpenAnswer, SharedPreadDigestAnswer } from './offload.worker.js';

/**
 * The read path's SHA-256 and AES-GCM on worker threads, so that a download
 * does not spend the event loop on them (the loop also runs ssh2, which
 * encrypts every byte once more).
 *
 * Why: a 1 GiB get had the event loop busy all along, about a fifth of it on
 * hashing chunks for their address check and decrypting them. Measured with
 * OpenSSH's sftp getting a 256 MiB file from a demo gateway (fsync on, same
 * store, builds alternated, 3 × 3 gets): the event loop's CPU went from
 * 1.40–1.78 to 0.89–1.30 s a get, the wall time from 1.50–2.30 to
 * 1.31–1.87 s, and the process's CPU stayed within a few per cent
 * (1.57–2.03 against 1.56–2.07 s).
 *
 * The write path's address hash of each sealed chunk goes there too
 * (sha256Shared): the pack store hashed every uploaded byte once more on the
 * event loop. Measured with OpenSSH's sftp putting 1 GiB into a demo gateway
 * (builds alternated, 3 puts each): the event loop's CPU went from 5.15–6.79
 * to 4.10–4.42 s a put; the hash's CPU moved, it was not saved.
 *
 * A chunk read out of a local pack file for a download is read on the
 * thread as well, and hashed there, when the thread has nothing else to do
 * (preadSha256Shared): one hop per chunk where a read on the event loop's
 * file threads and then the hash took two. Measured with OpenSSH's sftp
 * getting 1 GiB from a demo gateway (builds alternated, 9 gets each): the
 * gateway's CPU 3.06–3.50 s a get (median 3.09) instead of 2.91–3.75
 * (3.35), the get 3.36 s instead of 3.56 (medians). The read blocks the
 * thread, so it is given only an idle one: a read from a slow disk then
 * delays no one's hashing, and the reads of concurrent downloads still go
 * to the disk side by side on the file threads.
 *
 * A buffer of the caller's own goes only if it is the whole of its
 * ArrayBuffer: it is transferred to the thread and back, never copied, and
 * the caller uses the view it gets back (its own is detached meanwhile). A
 * view into shared memory (sha256Shared, openConvergentShared: a reader's
 * reused buffer, a sealed chunk in its slot) is read, and opened, where it
 * lies. Anything
 * smaller than OFFLOAD_MIN_BYTES, or any other view, is done inline: for a
 * small object the hop costs more than the work. The thread runs
 * offload.worker.ts, which calls the same functions as the inline path.
 *
 * Bounds: max(1, availableParallelism() − 1) threads, started on first use
 * (the work stays inline until one is ready), unref'd while idle
 * (RequestWorker) and ended after IDLE_MS without work;
 * no queue of their own, as every caller awaits its answer (a download
 * holds a few chunks in flight).
 */

/** Buffers smaller than this are hashed and opened inline. */
export const OFFLOAD_MIN_BYTES = 64 * 1024;

const poolSize = Math.max(1, availableParallelism() - 1);

/** A thread, and whether it answered its first message (until then work stays inline). */
interface OffloadThread {
  worker: RequestWorker<OffloadMessage>;
  ready: Promise<void>;
  isReady: boolean;
}
const threads: OffloadThread[] = [];

/**
 * Threads idle this long end: each is an isolate of some 10 MiB of RSS,
 * which a gateway that serves no download for a while should not keep.
 */
const IDLE_MS = 10_000;
let idleTimer: NodeJS.Timeout | undefined;

/**
 * The least loaded thread that is ready, after starting one if the pool is
 * not full. Undefined while none is ready: a thread takes some 50–100 ms to
 * start and load its module, which the first large read after an idle spell
 * would otherwise wait for (a 1 GiB `sftp cp`, which reads nothing but its
 * 70 KiB manifest, went from 7 to 100 ms); it works inline meanwhile.
 */
function readyWorker(): RequestWorker<OffloadMessage> | undefined {
  if (threads.length < poolSize) startThread();
  let best: OffloadThread | undefined;
  for (const t of threads) if (t.isReady && (best === undefined || t.worker.load < best.worker.load)) best = t;
  return best?.worker;
}

function startThread(): void {
  const worker = new RequestWorker<OffloadMessage>(
    workerModuleUrl('./offload.worker.js', import.meta.url),
    undefined,
    'offload thread',
    () => {
      const i = threads.indexOf(t);
      if (i >= 0) threads.splice(i, 1);
    },
  );
  const t: OffloadThread = {
    worker,
    isReady: false,
    ready: worker.request({ op: 'ping' }).then(
      () => {
        t.isReady = true;
        armIdleTimer();
      },
      () => undefined,
    ),
  };
  threads.push(t);
}

/** Sends `message` to `worker`; once no thread has work left, the idle timer starts. */
async function ask<T>(worker: RequestWorker<OffloadMessage>, message: OffloadMessage, transfer: ArrayBuffer[]): Promise<T> {
  clearTimeout(idleTimer);
  idleTimer = undefined;
  try {
    return await worker.request<T>(message, transfer);
  } finally {
    armIdleTimer();
  }
}

function armIdleTimer(): void {
  if (idleTimer === undefined && threads.every((t) => t.worker.load === 0)) idleTimer = setTimeout(endIdleThreads, IDLE_MS).unref();
}

/** Ends every thread with no request outstanding (what the idle timer does; tests call it). */
export function endIdleThreads(): void {
  clearTimeout(idleTimer);
  idleTimer = undefined;
  for (const t of threads.splice(0)) {
    if (t.worker.load > 0) threads.push(t);
    else void t.worker.terminate();
  }
}

/** Threads running now (ready or starting). */
export function offloadThreadCount(): number {
  return threads.length;
}

/** Starts the pool's threads and resolves once each is ready (tests; the read path starts them on first use). */
export async function startOffloadThreads(): Promise<void> {
  while (threads.length < poolSize) startThread();
  await Promise.all(threads.map((t) => t.ready));
}

/** The ArrayBuffer `bytes` is the whole of, when it may go to a thread. */
function transferable(bytes: Uint8Array): ArrayBuffer | undefined {
  const buffer = bytes.buffer;
  if (bytes.length < OFFLOAD_MIN_BYTES || !(buffer instanceof ArrayBuffer)) return undefined;
  return bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength ? buffer : undefined;
}

/**
 * The SHA-256 of `bytes`, which the caller gives up, and the bytes again:
 * use the answered view, as `bytes` itself is detached if it went to a thread.
 */
export async function sha256Owned(bytes: Uint8Array): Promise<{ digest: Uint8Array; bytes: Uint8Array }> {
  const buffer = transferable(bytes);
  const worker = buffer === undefined ? undefined : readyWorker();
  if (buffer === undefined || worker === undefined) return { digest: sha256(bytes), bytes };
  const r = await ask<OffloadAnswer>(worker, { op: 'sha256', buffer }, [buffer]);
  if (r.digest === undefined) throw new Error('offload thread: no digest in its answer');
  return { digest: r.digest, bytes: new Uint8Array(r.buffer) };
}

/**
 * Whether sha256Shared would hash `bytes` on a thread: a view of at least
 * OFFLOAD_MIN_BYTES into a SharedArrayBuffer (a sealed chunk in its slot).
 */
export function isSharedForOffload(bytes: Uint8Array): boolean {
  return bytes.length >= OFFLOAD_MIN_BYTES && bytes.buffer instanceof SharedArrayBuffer;
}

/**
 * The SHA-256 of `bytes`; when isSharedForOffload(bytes), computed on a
 * thread where the bytes lie, with nothing copied or transferred. The
 * caller MUST NOT change them until this settles.
 */
export async function sha256Shared(bytes: Uint8Array): Promise<Uint8Array> {
  const worker = isSharedForOffload(bytes) ? readyWorker() : undefined;
  if (worker === undefined) return sha256(bytes);
  const r = await ask<Partial<SharedDigestAnswer>>(worker, { op: 'sha256-shared', bytes }, []);
  if (r.digest === undefined) throw new Error('offload thread: no digest in its answer');
  return r.digest;
}

/**
 * Reads `bytes.length` bytes of the open file `fd` from `position` into
 * `bytes` and hashes them, both on a thread that has no other request:
 * one hop where reading through the event loop's file threads and then
 * sha256Shared took two. Undefined, having done nothing, when no thread is
 * ready and idle or `bytes` is not isSharedForOffload: the caller reads and
 * hashes as it would otherwise. The caller MUST keep `fd` open, and not
 * touch `bytes`, until this settles; fewer bytes are read at the file's end
 * (`bytesRead`, and the digest is of those).
 */
export async function preadSha256Shared(
  fd: number,
  position: number,
  bytes: Uint8Array,
): Promise<{ bytesRead: number; digest: Uint8Array } | undefined> {
  const worker = isSharedForOffload(bytes) ? readyWorker() : undefined;
  if (worker === undefined || worker.load > 0) return undefined;
  const r = await ask<Partial<SharedPreadDigestAnswer>>(worker, { op: 'pread-sha256-shared', fd, position, bytes }, []);
  if (r.digest === undefined || r.bytesRead === undefined) throw new Error('offload thread: no digest in its answer');
  return { bytesRead: r.bytesRead, digest: r.digest };
}

/**
 * openConvergentInPlace of `sealed`, on a thread where it lies when
 * isSharedForOffload(sealed) (a reader's reused buffer): the plaintext is
 * the answered view, at the start of `sealed`. The caller MUST NOT touch
 * `sealed` until this settles.
 */
export async function openConvergentShared(key: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
  const worker = isSharedForOffload(sealed) ? readyWorker() : undefined;
  if (worker === undefined) return openConvergentInPlace(key, sealed);
  // A copy of the key: a view's whole buffer would be cloned into the message (a file's every key).
  const r = await ask<Partial<SharedOpenAnswer>>(worker, { op: 'open-shared', bytes: sealed, key: key.slice() }, []);
  if (r.forged !== false) {
    if (r.forged === true) throw new AeadError();
    throw new Error('offload thread: no verdict in its answer');
  }
  return sealed.subarray(0, sealed.length - GCM_TAG_BYTES);
}

/** openConvergentInPlace of `sealed`, which the caller gives up: the plaintext, where the ciphertext was. */
export async function openConvergentOwned(key: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
  const buffer = transferable(sealed);
  const worker = buffer === undefined ? undefined : readyWorker();
  if (buffer === undefined || worker === undefined) return openConvergentInPlace(key, sealed);
  const length = sealed.length;
  const r = await ask<OffloadAnswer>(worker, { op: 'open', buffer, key }, [buffer]);
  if (r.forged === true) throw new AeadError();
  return new Uint8Array(r.buffer, 0, length - GCM_TAG_BYTES);
}
