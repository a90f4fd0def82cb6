import { failureAnswer, requestPort } from '../../util/request-worker.js';
import { ChunkSealer } from './chunk-sealer.js';

/**
 * A seal pool thread (seal-pool.ts): one ChunkSealer per open session, the
 * same class the writer uses inline, so both paths run one implementation.
 */

/** What the pool sends; `seal` and `finish` also carry the request id. */
export type SealMessage =
  | { op: 'open'; session: number; convergence: Uint8Array; checksums: number }
  | { op: 'close'; session: number }
  | { op: 'seal'; session: number; input: SharedArrayBuffer; output: SharedArrayBuffer; length: number }
  | { op: 'finish'; session: number };

/** The answer to `seal`: the chunk key, transferred. */
export interface SealAnswer {
  key: ArrayBuffer;
}

/** The answer to `finish`: the whole-file digests of the session's checksum set. */
export interface FinishAnswer {
  sha256: Uint8Array;
  md5?: Uint8Array;
  sha1?: Uint8Array;
}

const port = requestPort();
const sessions = new Map<number, ChunkSealer>();

port.on('message', (m: SealMessage & { id?: number }) => {
  try {
    if (m.op === 'open') {
      // One AES-GCM update per chunk, as this thread always did: with the
      // minor gc below, sixteen 64 KiB pieces per chunk cost far more CPU
      // here (4.2-5.0 instead of 2.6-2.9 CPU-s per 512 MiB sealed, a quarter
      // of it system time), though on the main thread the pieces are faster.
      sessions.set(m.session, new ChunkSealer(new Uint8Array(m.convergence), { wholeChunk: true, checksums: m.checksums }));
      return;
    }
    if (m.op === 'close') {
      sessions.delete(m.session);
      return;
    }
    const sealer = sessions.get(m.session);
    if (!sealer) throw new Error('unknown seal session');
    if (m.op === 'seal') {
      // Plaintext from one shared slot, ciphertext ‖ tag into another.
      const { key } = sealer.seal(new Uint8Array(m.input, 0, m.length), new Uint8Array(m.output));
      const answer: SealAnswer = { key: new Uint8Array(key).buffer };
      port.postMessage({ id: m.id, ...answer }, [answer.key]);
      // AES-GCM's 1 MiB update() output for this chunk is dead already
      // (copied into the slot); without this, V8 lets about 64 MiB of such buffers pile up
      // in this thread before it collects them (gc exists when node runs
      // with --expose-gc, which src/cli/node-flags.ts asks for).
      if (typeof gc === 'function') gc({ type: 'minor' });
    } else {
      sessions.delete(m.session);
      const answer: FinishAnswer = sealer.finish();
      port.postMessage({ id: m.id, ...answer });
    }
  } catch (err) {
    if (m.id !== undefined) port.postMessage(failureAnswer(m.id, err));
  }
});
