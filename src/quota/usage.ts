import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { Logger } from '../log.js';

/**
 * Per-account usage counters, persisted as a small JSON file (`[quota]
 * usage_file`, default store/quota-usage.json; not the slot database, which
 * the gateway holds locked):
 *
 *   {"version":1,"users":{"alice":{"bytes":123,"files":4,"countedAt":1700000000000}}}
 *
 * `countedAt` is when a walk last counted the account. Counters change by
 * deltas (commit, remove) in memory and are written at most every
 * `flushMs` and at close. A recount made elsewhere (`capstan account set
 * --recount` while the gateway runs) writes an entry with a newer
 * countedAt; `refresh()` and every flush adopt such entries, so the
 * gateway's next write does not undo it. Memory: one entry per account
 * with a quota.
 */

export interface Usage {
  bytes: number;
  files: number;
  countedAt: number;
}

interface UsageFile {
  version: 1;
  users: Record<string, Usage>;
}

async function readUsageFile(path: string): Promise<Map<string, Usage>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as UsageFile;
    const out = new Map<string, Usage>();
    for (const [user, u] of Object.entries(parsed.users ?? {})) {
      if (Number.isSafeInteger(u.bytes) && Number.isSafeInteger(u.files) && Number.isFinite(u.countedAt)) out.set(user, u);
    }
    return out;
  } catch {
    // A damaged file is only counters: every account is recounted at its next upload.
    return new Map();
  }
}

export class UsageBook {
  readonly #path: string;
  readonly #log: Logger | undefined;
  readonly #flushMs: number;
  #users: Map<string, Usage>;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(path: string, users: Map<string, Usage>, flushMs: number, log?: Logger) {
    this.#path = path;
    this.#users = users;
    this.#flushMs = flushMs;
    this.#log = log;
  }

  static async open(path: string, opts: { flushMs?: number; logger?: Logger } = {}): Promise<UsageBook> {
    return new UsageBook(path, await readUsageFile(path), opts.flushMs ?? 1000, opts.logger);
  }

  get(user: string): Usage | undefined {
    return this.#users.get(user);
  }

  /** A fresh count replaces the counters. */
  set(user: string, usage: Usage): void {
    this.#users.set(user, { ...usage });
    this.#schedule();
  }

  /** Forgets an account (its next use recounts). */
  delete(user: string): void {
    if (this.#users.delete(user)) this.#schedule();
  }

  /** Applies a change; counters never go below zero (a remove of something counted before a recount). */
  add(user: string, bytes: number, files: number): void {
    const u = this.#users.get(user);
    if (u === undefined) return; // not counted yet: the walk will see the change
    u.bytes = Math.max(0, u.bytes + bytes);
    u.files = Math.max(0, u.files + files);
    this.#schedule();
  }

  /** Adopts entries recounted by someone else since we read them. */
  async refresh(): Promise<void> {
    this.#adopt(await readUsageFile(this.#path));
  }

  #adopt(disk: Map<string, Usage>): void {
    for (const [user, u] of disk) {
      const mine = this.#users.get(user);
      if (mine === undefined || u.countedAt > mine.countedAt) this.#users.set(user, { ...u });
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#flushMs);
    this.#timer.unref();
  }

  /** Writes the counters now (after adopting newer recounts from the file). Never throws; logs. */
  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      try {
        this.#adopt(await readUsageFile(this.#path));
        const file: UsageFile = { version: 1, users: Object.fromEntries(this.#users) };
        await writeFileAtomic(this.#path, JSON.stringify(file) + '\n');
      } catch (err) {
        this.#log?.error({ event: 'quota_usage_write_failed', err: (err as Error).name }, 'could not write quota usage file');
      }
    });
    return this.#writing;
  }

  /** Writes the counters a last time; later changes are kept in memory only. */
  async close(): Promise<void> {
    if (this.#closed) return this.#writing;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
