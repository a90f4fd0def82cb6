import { availableParallelism } from 'node:os';
import { TAG } from '../../crypto/index.js';
import { RequestWorker } from '../../util/request-worker.js';
import type { Checksums } from '../api.js';
import type { ChunkSlot } from './chunk-slots.js';

/**
 * Worker threads that hash and seal upload chunks off the event loop.
 *
 * Why: on a 1 GiB put the gateway spent most of its CPU on the main thread
 * hashing (whole-file SHA-256 + MD5 + SHA-1, the per-chunk SHA-256 of the
 * convergent key) and AES-GCM, so the event loop that also runs ssh2 was the
 * bottleneck. Each ChunkedFileWriter that cuts a full chunk opens a session
 * on one worker; its chunks go to that worker in order (message order is
 * preserved), which keeps the stateful whole-file hashes correct.
 *
 * The worker computes exactly what the inline path does (format.ts
 * deriveChunkKey, aead.ts sealConvergent): key = HMAC-SHA256(convergence,
 * netstring(TAG.chunkKey) ‖ netstring(sha256(plaintext))), sealed =
 * AES-256-GCM(key, zero nonce, plaintext) ‖ tag. The tag string comes from
 * tags.ts through workerData, so it is defined in one place;
 * test/tree/seal-pool.test.ts and the frozen vectors hold the two paths equal.
 *
 * The worker runs on src/util/request-worker.ts (a plain JS string, node
 * built-ins only).
 *
 * Bounds: size max(1, availableParallelism() − 1) workers, created on first
 * use. The queue per session is bounded by its writer (at most `concurrency`
 * chunks in flight), so the pool holds no queue of its own.
 */

const WORKER_CODE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const ZERO_NONCE = Buffer.alloc(12);
const netstring = (b) => Buffer.concat([Buffer.from(b.length + ':'), b, Buffer.from(',')]);
const CHUNK_TAG = netstring(Buffer.from(workerData.chunkKeyTag, 'utf8'));
const sessions = new Map();
parentPort.on('message', (m) => {
  try {
    if (m.op === 'open') {
      sessions.set(m.session, {
        convergence: Buffer.from(m.convergence),
        sha256: crypto.createHash('sha256'), md5: crypto.createHash('md5'), sha1: crypto.createHash('sha1'),
      });
      return;
    }
    if (m.op === 'close') { sessions.delete(m.session); return; }
    const s = sessions.get(m.session);
    if (!s) throw new Error('unknown seal session');
    if (m.op === 'seal') {
      // Plaintext from one shared slot, ciphertext ‖ tag into another.
      const plaintext = Buffer.from(m.input, 0, m.length);
      s.sha256.update(plaintext); s.md5.update(plaintext); s.sha1.update(plaintext);
      const digest = crypto.createHash('sha256').update(plaintext).digest();
      const key = crypto.createHmac('sha256', s.convergence).update(CHUNK_TAG).update(netstring(digest)).digest();
      const cipher = crypto.createCipheriv('aes-256-gcm', key, ZERO_NONCE);
      const out = Buffer.from(m.output, 0, m.length + 16);
      out.set(cipher.update(plaintext), 0);
      cipher.final();
      out.set(cipher.getAuthTag(), m.length);
      const keyOut = new Uint8Array(key).buffer;
      parentPort.postMessage({ id: m.id, key: keyOut }, [keyOut]);
      // cipher.update's 1 MiB output is dead already; without this, V8 lets
      // about 64 MiB of such buffers pile up in this thread before it
      // collects them (gc exists when node runs with --expose-gc, which
      // src/cli/node-flags.ts asks for).
      if (typeof gc === 'function') gc({ type: 'minor' });
    } else if (m.op === 'finish') {
      sessions.delete(m.session);
      parentPort.postMessage({ id: m.id, sha256: s.sha256.digest(), md5: s.md5.digest(), sha1: s.sha1.digest() });
    }
  } catch (err) {
    if (m.id !== undefined) parentPort.postMessage({ id: m.id, error: String(err && err.message || err) });
  }
});
`;

const poolSize = Math.max(1, availableParallelism() - 1);
/** A pool thread and the number of open sessions it carries. */
interface PoolWorker {
  thread: RequestWorker;
  sessions: number;
}
const workers: PoolWorker[] = [];
let nextSession = 0;

function pickWorker(): PoolWorker {
  if (workers.length < poolSize) {
    const w: PoolWorker = {
      thread: new RequestWorker(WORKER_CODE, { chunkKeyTag: TAG.chunkKey }, 'seal worker', () => {
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

  constructor(convergence: Uint8Array) {
    this.#worker = pickWorker();
    this.#worker.sessions++;
    this.#worker.thread.post({ op: 'open', session: this.#id, convergence: new Uint8Array(convergence) });
  }

  async seal(input: ChunkSlot, length: number, output: ChunkSlot): Promise<Uint8Array> {
    if (length > input.bytes.length || length + 16 > output.bytes.length) throw new RangeError('chunk does not fit its slots');
    const r = await this.#worker.thread.request<{ key: ArrayBuffer }>({
      op: 'seal',
      session: this.#id,
      input: input.memory,
      output: output.memory,
      length,
    });
    return new Uint8Array(r.key);
  }

  async finish(): Promise<Checksums> {
    const r = await this.#worker.thread.request<{ sha256: Uint8Array; md5: Uint8Array; sha1: Uint8Array }>({
      op: 'finish',
      session: this.#id,
    });
    this.#release();
    return { sha256: new Uint8Array(r.sha256), md5: new Uint8Array(r.md5), sha1: new Uint8Array(r.sha1) };
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
