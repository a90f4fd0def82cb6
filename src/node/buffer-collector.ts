import { getHeapStatistics } from 'node:v8';

/**
 * Bounds the memory dead buffers hold in a gateway started with
 * `--no-incremental-marking-task` (src/cli/node-flags.ts).
 *
 * Without V8's marking task, a buffer that lived through two young
 * collections before it died (a WRITE that waited in a busy session's
 * queue) is freed only by the next full collection, and V8 starts one late:
 * in `npm run bench`, with 8 clients uploading 128 MiB each at once, the
 * gateway's peak RSS went from 285–310 to 307–372 MiB. So this checks,
 * every `intervalMs`, how much memory the process holds outside V8's heap
 * (V8's external memory, ArrayBuffers included; 0.5 µs to read), and once
 * that is `slackBytes` more than right after the last full collection (or
 * than the least seen since), it collects (the young generation first,
 * below).
 *
 * Often, because a 1 GiB get allocates some 600 MB/s of buffers: checked
 * every 100 ms, up to 60 MB more could pile up between two checks, and the
 * bench's peak was still 307–348 MiB; every 20 ms it was 278–323. Measured
 * at 100 ms, a single 1 GiB get or put ran 5–13 of these collections and
 * 8 clients × 128 MiB about 30, of 40–50 ms each.
 *
 * Most of those buffers die young (an SSH packet is dead once written, a
 * reply once ssh2 copied it), and a young-generation collection frees them
 * for about 1 ms where a full one took 20–50. So a young collection comes
 * first, and the full one runs only when that left more than half the
 * slack held. Measured on a demo gateway, main-thread CPU per 1 GiB (3
 * alternated rounds of 2 transfers): get 1.73–2.25 s with full collections
 * only, 1.46–1.98 s young first; put 1.95–2.17 s against 1.50–2.24 s. The
 * 8-client peak RSS did not move (capstan-only bench, 3 alternated pairs of
 * 2 runs: 228–254 MiB against 240–253).
 *
 * `collect` and `collectYoung` default to the `gc()` of `--expose-gc` (one
 * of capstan's node flags); without it, nothing runs. Memory: a few numbers
 * and one timer.
 */
export interface BufferCollectorOptions {
  slackBytes: number;
  intervalMs: number;
  /** Bytes held outside the heap now (default: V8's external memory, ArrayBuffers included). */
  held?: () => number;
  /** A full, synchronous collection (default: globalThis.gc). */
  collect?: () => void;
  /** A young-generation collection, tried first (default: globalThis.gc({ type: 'minor' })). */
  collectYoung?: () => void;
}

export function startBufferCollector(opts: BufferCollectorOptions): { stop(): void } {
  const gc = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;
  const collect = opts.collect ?? gc;
  const collectYoung = opts.collectYoung ?? (gc === undefined ? undefined : () => gc({ type: 'minor' }));
  if (collect === undefined) return { stop() {} };
  const held = opts.held ?? (() => getHeapStatistics().external_memory);
  let floor = held();
  const timer = setInterval(() => {
    const now = held();
    if (now < floor) floor = now;
    else if (now - floor > opts.slackBytes) {
      if (collectYoung !== undefined) {
        collectYoung();
        if (held() - floor <= opts.slackBytes / 2) return;
      }
      collect();
      floor = held();
    }
  }, opts.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** What the gateway runs it with: at most about 32 MiB of dead buffers, checked 50 times a second. */
export const BUFFER_COLLECTOR = { slackBytes: 32 * 1024 * 1024, intervalMs: 20 } as const;
