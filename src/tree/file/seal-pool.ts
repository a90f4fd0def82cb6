import { availableParallelism } from 'node:os';
import { RequestWorker } from '../../util/request-worker.js';
import { workerModuleUrl } from '../../util/worker-module.js';
import type { Checksums } from '../api.js';
import { copyChecksums } from './checksums.js';
import { ALL_CHECKSUMS } from './format.js';
import type { ChunkSlot } from './chunk-slots.js';
import type { FinishAnswer, SealAnswer, SealMessage } from './seal.worker.js';

/**
 * Worker threads that hash and seal upload chunks off the event loop.
 *
 * Why: on a 1 GiB put the gateway spent most of its CPU on the main thread
 * hashing (whole-file SHA-256, MD5 and SHA-1 if recorded, the per-chunk SHA-256 of the
 * convergent key) and AES-GCM, so the event loop that also runs ssh2 was the
 * bottleneck. Each ChunkedFileWriter that cuts a full chunk opens a session
 * on one worker; its chunks go to that worker in order (message order is
 * preserved), which keeps the stateful whole-file hashes correct.
 *
 * The thread runs seal.worker.ts, which does its work with ChunkSealer
 * (chunk-sealer.ts), the class the writer's inline path uses: one
 * implementation of the digests, the chunk key derivation and the sealing.
 * test/tree/seal-pool.test.ts and the frozen vectors hold the two paths equal.
 *
 * Bounds: size max(1, availableParallelism() − 1) workers, created on first
 * use. The queue per session is bounded by its writer (at most `concurrency`
 * chunks in flight), so the pool holds no queue of its own.
 */

const poolSize = Math.max(1, availableParallelism() - 1);
/** A pool thread and the number of open sessions it carries. */
interface PoolWorker {
  thread: RequestWorker<SealMessage>;
  sessions: number;
}
const workers: PoolWorker[] = [];
let nextSession = 0;

function pickWorker(): PoolWorker {
  if (workers.length < poolSize) {
    const w: PoolWorker = {
      thread: new RequestWorker<SealMessage>(workerModuleUrl('./seal.worker.js', import.meta.url), undefined, 'seal worker', () => {
        const i = workers.indexOf(w);
        if (i >= 0) workers.splice(i, 1);
      }),
      sessions: 0,
    };
    workers.push(w);
    return w;
  }
  return workers.reduce((a, b) => (b.sessions < a.sessions ? b : a));
}

/**
 * One file's chunks on one worker, in order. seal() reads `length` plaintext
 * bytes from `input` and writes the `length + 16` bytes of ciphertext ‖ tag
 * into `output` (both shared memory, chunk-slots.ts; the caller MUST NOT
 * touch either until the promise settles) and answers the chunk key.
 * finish() returns the whole-file digests of every chunk sealed, in order;
 * close() drops the session (idempotent).
 */
export class SealSession {
  readonly #worker: PoolWorker;
  readonly #id = nextSession++;
  #closed = false;

  /** `checksums`: the checksum set m (format.ts) whose digests finish() answers; default all three. */
  constructor(convergence: Uint8Array, checksums = ALL_CHECKSUMS) {
    this.#worker = pickWorker();
    this.#worker.sessions++;
    this.#worker.thread.post({ op: 'open', session: this.#id, convergence: new Uint8Array(convergence), checksums });
  }

  async seal(input: ChunkSlot, length: number, output: ChunkSlot): Promise<Uint8Array> {
    if (length > input.bytes.length || length + 16 > output.bytes.length) throw new RangeError('chunk does not fit its slots');
    const r = await this.#worker.thread.request<SealAnswer>({
      op: 'seal',
      session: this.#id,
      input: input.memory,
      output: output.memory,
      length,
    });
    return new Uint8Array(r.key);
  }

  async finish(): Promise<Checksums> {
    const r = await this.#worker.thread.request<FinishAnswer>({
      op: 'finish',
      session: this.#id,
    });
    this.#release();
    return copyChecksums(r);
  }

  close(): void {
    if (this.#closed) return;
    if (!this.#worker.thread.dead) this.#worker.thread.post({ op: 'close', session: this.#id });
    this.#release();
  }

  #release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.sessions--;
  }
}
