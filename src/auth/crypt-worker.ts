import { packageEntryUrl } from '../threads/package-entry.js';
import { RequestWorker } from '../threads/request-worker.js';

/**
 * One worker thread that checks crypt(3) passwords with the libraries made
 * for them: unixcrypt's verify for $5$ and $6$, apache-md5 for $1$. The
 * string below only loads them (by the absolute URLs the main thread
 * resolves) and answers; it implements no part of either algorithm.
 *
 * apache-md5 hashes its input with node's 'ascii' encoding, which for a
 * string is the low byte of each UTF-16 unit: the password goes in as the
 * latin1 spelling of its UTF-8 bytes, so the bytes hashed are the UTF-8
 * bytes, as glibc's crypt(3) hashes them. Its output is compared with the
 * stored hash in constant time; unixcrypt compares in constant time itself.
 *
 * Errors from the libraries are turned into `false` in the worker, with no
 * message (which could quote the hash).
 */
const WORKER_CODE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
let libs;
async function load() {
  if (libs === undefined) {
    const sha = await import(workerData.unixcrypt);
    const md5 = await import(workerData.apacheMd5);
    libs = { sha, md5: md5.default ?? md5 };
  }
  return libs;
}
parentPort.on('message', async (m) => {
  let ok = false;
  try {
    const { sha, md5 } = await load();
    if (m.kind === 'md5') {
      const out = Buffer.from(md5(Buffer.from(m.password, 'utf8').toString('latin1'), m.hash), 'utf8');
      const want = Buffer.from(m.hash, 'utf8');
      ok = out.length === want.length && crypto.timingSafeEqual(out, want);
    } else {
      ok = sha.verify(m.password, m.hash) === true;
    }
  } catch {
    ok = false;
  }
  parentPort.postMessage({ id: m.id, ok });
});
`;

export class CryptWorker {
  #thread: RequestWorker | undefined;
  #urls: { unixcrypt: string; apacheMd5: string } | undefined;

  async verify(kind: 'md5' | 'sha', password: string, hash: string): Promise<boolean> {
    this.#urls ??= { unixcrypt: packageEntryUrl('unixcrypt', import.meta.url), apacheMd5: packageEntryUrl('apache-md5', import.meta.url) };
    if (this.#thread === undefined || this.#thread.dead) {
      this.#thread = new RequestWorker(WORKER_CODE, this.#urls, 'crypt worker', () => undefined);
    }
    const answer = await this.#thread.request<{ ok: boolean }>({ kind, password, hash });
    return answer.ok === true;
  }

  async close(): Promise<void> {
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.terminate();
  }
}
