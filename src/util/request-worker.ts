import { type MessagePort, parentPort, Worker } from 'node:worker_threads';

/**
 * One worker thread answering requests by id: the plumbing shared by the
 * seal pool (src/tree/file/seal-pool.ts), the fs chunk store's I/O threads
 * (src/store/chunks/fs/fs-io.ts) and the crypt(3) checker
 * (src/auth/crypt-thread.ts).
 *
 * The thread runs a typed module (`*.worker.ts`) that imports the same
 * functions the main thread uses, so key derivation, sealing, chunk naming
 * and the write order each have one implementation under the type checker.
 * workerModuleUrl (worker-module.ts) finds that module's compiled file, also
 * when the caller runs from the TypeScript sources under the test runner.
 *
 * Protocol: every request carries `id`; the answer carries the same `id` and
 * either the result fields or `error` (a message) plus optionally `code` (an
 * errno string such as ENOENT); failureAnswer builds that on the thread.
 * `Message` is the union of what the thread accepts, declared in its module.
 *
 * The worker is ref'd only while requests are outstanding: an idle worker
 * never keeps the process alive, a busy one does not let it exit mid-request.
 * If the thread dies, every outstanding request rejects and `dead` turns
 * true; the owner drops it and makes a new one.
 */
export class RequestWorker<Message extends object = object> {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(value: any): void; reject(err: Error): void }>();
  #nextId = 0;
  dead = false;

  /** `module` is a workerModuleUrl; `label` names the thread in errors ("seal worker: …"). */
  constructor(
    module: URL,
    workerData: unknown,
    private readonly label: string,
    onDeath: (worker: RequestWorker<Message>) => void,
  ) {
    this.#worker = new Worker(module, { workerData });
    this.#worker.unref();
    this.#worker.on('message', (m: { id: number; error?: string; code?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if (m.error === undefined) p.resolve(m);
      else p.reject(Object.assign(new Error(`${label}: ${m.error}`), m.code === undefined ? {} : { code: m.code }));
    });
    const die = (err: Error): void => {
      if (this.dead) return;
      this.dead = true;
      onDeath(this);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    this.#worker.on('error', die);
    this.#worker.on('exit', (code) => die(new Error(`${label} exited (code ${code})`)));
  }

  /** Requests outstanding on this thread (for least-loaded dispatch). */
  get load(): number {
    return this.#pending.size;
  }

  /** A message with no answer (session bookkeeping). */
  post(message: Message, transfer: ArrayBuffer[] = []): void {
    this.#worker.postMessage(message, transfer);
  }

  request<T>(message: Message, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(new Error(`${this.label} is gone`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** Ends the thread; outstanding requests reject. */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

/** The port a worker module answers on; only a worker thread has one. */
export function requestPort(): MessagePort {
  if (parentPort === null) throw new Error('a worker module must run on a worker thread');
  return parentPort;
}

/** The answer to request `id` that failed with `err`: its message, and its errno code when it has one. */
export function failureAnswer(id: number, err: unknown): { id: number; error: string; code?: string } {
  const error = String((err as Error | null)?.message || err);
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? { id, error, code } : { id, error };
}
