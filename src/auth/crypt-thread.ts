import { RequestWorker } from '../util/request-worker.js';
import { workerModuleUrl } from '../util/worker-module.js';
import type { CryptAnswer, CryptMessage } from './crypt.worker.js';

/**
 * One worker thread (crypt.worker.ts) that checks crypt(3) passwords with
 * the libraries made for them, so their plain-JavaScript hashing never
 * blocks the event loop. Created on first use; requests queue on it.
 */
export class CryptThread {
  #thread: RequestWorker<CryptMessage> | undefined;

  async verify(kind: CryptMessage['kind'], password: string, hash: string): Promise<boolean> {
    if (this.#thread === undefined || this.#thread.dead) {
      this.#thread = new RequestWorker<CryptMessage>(
        workerModuleUrl('./crypt.worker.js', import.meta.url),
        undefined,
        'crypt worker',
        () => undefined,
      );
    }
    const answer = await this.#thread.request<CryptAnswer>({ kind, password, hash });
    return answer.ok === true;
  }

  async close(): Promise<void> {
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.terminate();
  }
}
