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
 * with nothing. `sha256-shared` hashes a view into shared memory where it
 * lies (nothing is transferred) and answers the digest alone.
 */
export type OffloadMessage =
  | { op: 'ping' }
  | { op: 'sha256'; buffer: ArrayBuffer }
  | { op: 'sha256-shared'; bytes: Uint8Array }
  | { op: 'open'; buffer: ArrayBuffer; key: Uint8Array };

/** The answer to sha256-shared: the digest alone (the bytes never moved). */
export interface SharedDigestAnswer {
  digest: Uint8Array;
}

/** The answer to sha256 and open: the buffer, back; `digest` for sha256; `forged` when open found the tag wrong. */
export interface OffloadAnswer {
  buffer: ArrayBuffer;
  digest?: Uint8Array;
  forged?: boolean;
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
    if (m.op === 'open' && typeof gc === 'function') gc({ type: 'minor' });
  } catch (err) {
    port.postMessage(failureAnswer(m.id, err));
  }
});
