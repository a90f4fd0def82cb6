import { Worker } from 'node:worker_threads';

/**
 * One worker thread answering requests by id: the plumbing shared by the
 * seal pool (src/tree/file/seal-pool.ts) and the fs chunk store's I/O
 * threads (src/store/chunks/fs/fs-io.ts).
 *
 * The worker's code is a plain JS string run with `eval: true` that needs
 * only node built-ins, so it loads the same under vitest (TS sources) and
 * from dist. Its protocol: every request carries `id`; the answer carries the
 * same `id` and either the result fields or `error` (a message) plus
 * optionally `code` (an errno string such as ENOENT).
 *
 * The worker is ref'd only while requests are outstanding: an idle worker
 * never keeps the process alive, a busy one does not let it exit mid-request.
 * If the thread dies, every outstanding request rejects and `dead` turns
 * true; the owner drops it and makes a new one.
 */
export class RequestWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve(value: any): void; reject(err: Error): void }>();
  #nextId = 0;
  dead = false;

  /** `label` names the thread in errors ("seal worker: …"). */
  constructor(
    code: string,
    workerData: unknown,
    private readonly label: string,
    onDeath: (worker: RequestWorker) => void,
  ) {
    this.#worker = new Worker(code, { eval: true, workerData });
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
  post(message: object, transfer: ArrayBuffer[] = []): void {
    this.#worker.postMessage(message, transfer);
  }

  request<T>(message: object, transfer: ArrayBuffer[] = []): Promise<T> {
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
