/**
 * Bounds the memory dead buffers hold in a gateway started with
 * `--no-incremental-marking-task` (src/cli/node-flags.ts).
 *
 * Without V8's marking task, a buffer that lived through two young
 * collections before it died (a WRITE that waited in a busy session's
 * queue) is freed only by the next full collection, and V8 starts one late:
 * with 8 clients uploading 128 MiB each at once, the gateway's peak RSS
 * went from 310 to 372 MiB. So this checks, every `intervalMs`, how much
 * ArrayBuffer memory the process holds; once that is `slackBytes` more than
 * right after the last full collection (or than the least seen since), it
 * runs one. The same run then peaked at 233–252 MiB, with 30 such
 * collections of 40–50 ms each; a single 1 GiB get or put has 5–13.
 *
 * `collect` defaults to the `gc()` of `--expose-gc` (one of capstan's node
 * flags); without it, nothing runs. Memory: a few numbers and one timer.
 */
export interface BufferCollectorOptions {
  slackBytes: number;
  intervalMs: number;
  /** Bytes held in ArrayBuffers now (default: process.memoryUsage().arrayBuffers). */
  held?: () => number;
  /** A full, synchronous collection (default: globalThis.gc). */
  collect?: () => void;
}

export function startBufferCollector(opts: BufferCollectorOptions): { stop(): void } {
  const collect = opts.collect ?? (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) return { stop() {} };
  const held = opts.held ?? (() => process.memoryUsage().arrayBuffers);
  let floor = held();
  const timer = setInterval(() => {
    const now = held();
    if (now < floor) floor = now;
    else if (now - floor > opts.slackBytes) {
      collect();
      floor = held();
    }
  }, opts.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** What the gateway runs it with: at most about 32 MiB of dead buffers, checked 10 times a second. */
export const BUFFER_COLLECTOR = { slackBytes: 32 * 1024 * 1024, intervalMs: 100 } as const;
