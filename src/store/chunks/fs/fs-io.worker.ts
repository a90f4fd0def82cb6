import { workerData } from 'node:worker_threads';
import { failureAnswer, requestPort } from '../../../util/request-worker.js';
import { placeSync, putChunkSync, readChunkSync } from './fs-sync.js';

/**
 * An FsChunkStore I/O thread (fs-io.ts): each request is one call into
 * fs-sync.ts, whose chunk naming and paths are fs-layout.ts's.
 */

export interface FsIoWorkerData {
  chunksDir: string;
  tmpDir: string;
  maxChunkBytes: number;
}

/**
 * What FsIo sends. A put's bytes are either its own transferred buffer or
 * `length` bytes of staging slot `slot`, whose memory comes along (`shared`)
 * the first time this thread sees that slot.
 */
export type FsIoMessage =
  | { op: 'put'; bytes: ArrayBuffer; fsync: boolean }
  | { op: 'put'; slot: number; shared: SharedArrayBuffer | undefined; length: number; fsync: boolean }
  | { op: 'get'; paths: string[]; digest: Uint8Array }
  | { op: 'place'; temp: string; final: string; fsync: boolean };

/** The answer to a put: the SHA-256 of the bytes, transferred. */
export interface PutAnswer {
  digest: ArrayBuffer;
}

/** The answer to a get: the checked bytes, transferred. */
export interface GetAnswer {
  bytes: ArrayBuffer;
}

const { chunksDir, tmpDir, maxChunkBytes } = workerData as FsIoWorkerData;
const port = requestPort();
/** Staging slots (shared memory the main thread copies puts into), by id. */
const slots = new Map<number, SharedArrayBuffer>();

function put(m: Extract<FsIoMessage, { op: 'put' }>): ArrayBuffer {
  let bytes: Uint8Array;
  if ('bytes' in m) {
    bytes = new Uint8Array(m.bytes);
  } else {
    if (m.shared) slots.set(m.slot, m.shared);
    const shared = slots.get(m.slot);
    if (shared === undefined) throw new Error('unknown staging slot');
    bytes = new Uint8Array(shared, 0, m.length);
  }
  const address = putChunkSync(chunksDir, tmpDir, bytes, m.fsync);
  return new Uint8Array(address.multihash.digest).buffer;
}

port.on('message', (m: FsIoMessage & { id: number }) => {
  try {
    if (m.op === 'put') {
      const answer: PutAnswer = { digest: put(m) };
      port.postMessage({ id: m.id, ...answer }, [answer.digest]);
      // A put that came as its own buffer (no staging slot was free) left it
      // dead here; collect it now rather than after ~64 MiB of them (gc
      // exists under --expose-gc, see src/cli/node-flags.ts).
      if ('bytes' in m && typeof gc === 'function') gc({ type: 'minor' });
    } else if (m.op === 'get') {
      const bytes = readChunkSync(m.paths, m.digest, maxChunkBytes);
      const answer: GetAnswer = { bytes: bytes.buffer };
      port.postMessage({ id: m.id, ...answer }, [answer.bytes]);
    } else if (m.op === 'place') {
      placeSync(m.temp, m.final, m.fsync);
      port.postMessage({ id: m.id });
    } else {
      throw new Error('unknown request');
    }
  } catch (err) {
    port.postMessage(failureAnswer(m.id, err));
  }
});
