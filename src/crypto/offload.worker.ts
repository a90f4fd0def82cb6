import { readFullyAtSync } from '../util/read-fully.js';
import { failureAnswer, requestPort } from '../util/request-worker.js';
import { AeadError, openConvergentInPlace } from './aead.js';
import { sha256 } from './kdf.js';

/**
 * An offload thread (offload.ts): hashes and opens buffers transferred to
 * it with the functions the main thread calls inline (kdf.ts's sha256,
 * aead.ts's openConvergentInPlace), and transfers each buffer back with the
 * answer.
 */

/**
 * What the pool sends; `ping` is its first message to a new thread, answered
 * with nothing. `sha256-shared` and `open-shared` work on a view into
 * shared memory where it lies (nothing is transferred): the first answers
 * the digest alone, the second decrypts in place and answers its verdict.
 * `pread-sha256-shared` first reads `bytes.length` bytes of the open file
 * `fd` from `position` into the view, then hashes what it read; the pool
 * sends it only to a thread with nothing else to do, as the read holds it.
 */
export type OffloadMessage =
  | { op: 'ping' }
  | { op: 'sha256'; buffer: ArrayBuffer }
  | { op: 'sha256-shared'; bytes: Uint8Array }
  | { op: 'pread-sha256-shared'; fd: number; position: number; bytes: Uint8Array }
  | { op: 'open'; buffer: ArrayBuffer; key: Uint8Array }
  | { op: 'open-shared'; bytes: Uint8Array; key: Uint8Array };

/** The answer to sha256-shared: the digest alone (the bytes never moved). */
export interface SharedDigestAnswer {
  digest: Uint8Array;
}

/** The answer to pread-sha256-shared: how many bytes it read (fewer at the file's end), and their digest. */
export interface SharedPreadDigestAnswer {
  bytesRead: number;
  digest: Uint8Array;
}

/** The answer to open-shared: the plaintext is where the ciphertext was; `forged` when the tag was wrong. */
export interface SharedOpenAnswer {
  forged: boolean;
}

/** The answer to sha256 and open: the buffer, back; `digest` for sha256; `forged` when open found the tag wrong. */
export interface OffloadAnswer {
  buffer: ArrayBuffer;
  digest?: Uint8Array;
  forged?: boolean;
}

/**
 * open-shared decrypts in pieces this big: update() returns each piece in a
 * new buffer, and a 1 MiB one is fresh memory from the kernel every time.
 * Measured over warm 1 GiB gets, this thread's system time per GiB: 0.63 s
 * with whole chunks, 0.05–0.08 s with 16 or 64 KiB pieces.
 */
const SHARED_OPEN_PIECE_BYTES = 16 * 1024;

/**
 * A young collection runs once the requests since the last one brought
 * views into this much shared memory.
 *
 * Why: a request's view keeps the SharedArrayBuffer under it alive on this
 * thread until this thread's heap collects it, and hashing allocates next
 * to nothing here, so that could be a long time. The slots those views lie
 * in are reused by their owners, but a slot its owner's pool does not keep
 * (src/tree/file/chunk-slots.ts keeps 12 free ones) is freed only once no
 * thread refers to it. With 8 clients each putting 128 MiB (`npm run bench
 * -- --capstan-only --only concurrent`), the gateway's RSS went to 780–844
 * MiB with a 64 MiB memory budget and to 249–296 MiB with the default 16;
 * with this collection, to 300–318 and 211–235. A young collection after
 * every request cost this thread about 0.12 CPU-s per GiB put; one per 8
 * MiB of views costs nothing measurable (an in-process 512 MiB upload:
 * 340–390 ms of this thread, against 370–380 without).
 * test/crypto/offload-retention.test.ts holds the bound.
 */
const COLLECT_AFTER_SHARED_BYTES = 8 * 1024 * 1024;
let sharedSinceCollection = 0;

/** Counts a request's view into shared memory as answered, and collects once enough were. */
function doneWithShared(bytes: Uint8Array): void {
  sharedSinceCollection += bytes.byteLength;
  if (sharedSinceCollection < COLLECT_AFTER_SHARED_BYTES) return;
  collectYoung();
}

/** With --expose-gc (src/cli/node-flags.ts): a young collection now, which frees what the last requests left dead. */
function collectYoung(): void {
  sharedSinceCollection = 0;
  if (typeof gc === 'function') gc({ type: 'minor' });
}

const port = requestPort();

port.on('message', (m: OffloadMessage & { id: number }) => {
  try {
    if (m.op === 'ping') {
      // The pool's first message: this thread has loaded its module and listens.
      port.postMessage({ id: m.id });
      return;
    }
    if (m.op === 'sha256-shared') {
      const answer: SharedDigestAnswer = { digest: sha256(m.bytes) };
      port.postMessage({ id: m.id, ...answer });
      doneWithShared(m.bytes);
      return;
    }
    if (m.op === 'pread-sha256-shared') {
      const bytesRead = readFullyAtSync(m.fd, m.bytes, m.position);
      const answer: SharedPreadDigestAnswer = { bytesRead, digest: sha256(m.bytes.subarray(0, bytesRead)) };
      port.postMessage({ id: m.id, ...answer });
      doneWithShared(m.bytes);
      return;
    }
    if (m.op === 'open-shared') {
      const answer: SharedOpenAnswer = { forged: false };
      try {
        openConvergentInPlace(m.key, m.bytes, undefined, SHARED_OPEN_PIECE_BYTES);
      } catch (err) {
        if (!(err instanceof AeadError)) throw err;
        answer.forged = true;
      }
      port.postMessage({ id: m.id, ...answer });
      // update()'s 16 KiB pieces, and the view, are dead now.
      collectYoung();
      return;
    }
    const bytes = new Uint8Array(m.buffer);
    const answer: OffloadAnswer = { buffer: m.buffer };
    if (m.op === 'sha256') {
      answer.digest = sha256(bytes);
    } else {
      try {
        // One update() for the whole chunk, its output freed at once by the minor gc below: on this
        // thread that costs less than 64 KiB pieces, as on the seal worker (seal.worker.ts).
        openConvergentInPlace(m.key, bytes, undefined, bytes.length);
      } catch (err) {
        if (!(err instanceof AeadError)) throw err;
        answer.forged = true;
      }
    }
    port.postMessage({ id: m.id, ...answer }, [m.buffer]);
    // With --expose-gc (src/cli/node-flags.ts): update()'s dead output goes now, not some 64 MiB later.
    if (m.op === 'open') collectYoung();
  } catch (err) {
    port.postMessage(failureAnswer(m.id, err));
  }
});
