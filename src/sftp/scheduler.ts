/**
 * Runs one SFTP session's requests in arrival order.
 *
 * Why order matters: OpenSSH's sftp-server handles requests strictly one at
 * a time, and clients rely on it. sshfs sends CLOSE without waiting for its
 * reply and may then OPEN the same file for reading; pipelined WRITEs to one
 * handle must land in order; a RENAME sent after a CLOSE must see the file
 * the CLOSE committed. So every request that changes anything (or touches a
 * write handle) is `exclusive`: it starts only after everything before it
 * has finished, and nothing after it starts until it has. Pure reads
 * (READ on a read-only handle, stat, realpath) are `shared`: consecutive
 * shared requests run together, at most `maxShared` at a time, which keeps
 * a download's pipelined READs concurrent against a slow store.
 *
 * Bounds: requests queued or running hold their WRITE payloads; when their
 * bytes pass `highWaterBytes` (or their count `maxQueued`) the owner is told
 * to stop reading the socket (`onPressure(true)`), and to resume once below
 * half of that. OpenSSH's sftp keeps at most 64 requests of 255 KiB in flight
 * (16 MiB), under the default high-water mark, so it never stalls on it.
 * The same bytes are charged to the gateway's memory budget (`memory`) from
 * push until the task finished or was dropped; the session watches that
 * budget's pressure itself (sftp-session.ts).
 */
import type { MemoryBudget } from '../util/memory-budget.js';

export interface Task {
  exclusive: boolean;
  /** Payload bytes the queued request holds (WRITE data), for the memory bound. */
  bytes: number;
  run(): Promise<void>;
}

export interface SchedulerOptions {
  maxShared?: number;
  highWaterBytes?: number;
  maxQueued?: number;
  /** The gateway-wide budget queued bytes are charged to (none: only this session's bound). */
  memory?: MemoryBudget | undefined;
  onPressure?(paused: boolean): void;
  /** Called with anything a task throws (tasks answer their own errors; this is a bug). */
  onTaskError?(err: unknown): void;
}

export class RequestScheduler {
  readonly #maxShared: number;
  readonly #highWaterBytes: number;
  readonly #maxQueued: number;
  readonly #onPressure: (paused: boolean) => void;
  readonly #onTaskError: (err: unknown) => void;
  readonly #memory: MemoryBudget | undefined;
  #queue: Task[] = [];
  #head = 0;
  #running = 0;
  #exclusiveRunning = false;
  #bytes = 0;
  #paused = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(opts: SchedulerOptions = {}) {
    this.#maxShared = opts.maxShared ?? 16;
    this.#highWaterBytes = opts.highWaterBytes ?? 32 * 1024 * 1024;
    this.#maxQueued = opts.maxQueued ?? 4096;
    this.#onPressure = opts.onPressure ?? (() => {});
    this.#onTaskError = opts.onTaskError ?? (() => {});
    this.#memory = opts.memory;
  }

  get running(): number {
    return this.#running;
  }
  get queued(): number {
    return this.#queue.length - this.#head;
  }
  get bytes(): number {
    return this.#bytes;
  }

  push(task: Task): void {
    if (this.#closed) return;
    this.#queue.push(task);
    this.#bytes += task.bytes;
    this.#memory?.charge(task.bytes);
    this.#updatePressure();
    this.#pump();
  }

  /** Drops queued requests (never started) and resolves once running ones have finished. */
  close(): Promise<void> {
    this.#closed = true;
    for (let i = this.#head; i < this.#queue.length; i++) {
      const bytes = this.#queue[i]!.bytes;
      this.#bytes -= bytes;
      this.#memory?.release(bytes);
    }
    this.#queue = [];
    this.#head = 0;
    this.#updatePressure();
    return this.idle();
  }

  /** Resolves when nothing is running and nothing is queued. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #pump(): void {
    while (!this.#closed && this.#head < this.#queue.length) {
      const task = this.#queue[this.#head]!;
      if (task.exclusive ? this.#running > 0 : this.#exclusiveRunning || this.#running >= this.#maxShared) return;
      this.#queue[this.#head] = undefined as unknown as Task;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#start(task);
    }
    if (this.#running === 0 && this.queued === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  #start(task: Task): void {
    this.#running++;
    if (task.exclusive) this.#exclusiveRunning = true;
    let promise: Promise<void>;
    try {
      promise = task.run();
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise
      .catch((err: unknown) => this.#onTaskError(err))
      .finally(() => {
        this.#running--;
        if (task.exclusive) this.#exclusiveRunning = false;
        this.#bytes -= task.bytes;
        this.#memory?.release(task.bytes);
        this.#updatePressure();
        this.#pump();
      });
  }

  #updatePressure(): void {
    const queued = this.queued;
    if (!this.#paused && (this.#bytes > this.#highWaterBytes || queued > this.#maxQueued)) {
      this.#paused = true;
      this.#onPressure(true);
    } else if (this.#paused && this.#bytes <= this.#highWaterBytes / 2 && queued <= this.#maxQueued / 2) {
      this.#paused = false;
      this.#onPressure(false);
    }
  }
}
