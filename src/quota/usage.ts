import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { Logger } from '../log.js';
import { fitsLimit, type Usage, type UsageLedger } from './ledger.js';
import type { Quota } from './quotas-file.js';

/**
 * Per-account usage counters of one gateway, persisted as a small JSON file
 * (`[quota] usage_file`, default store/quota-usage.json; docs/spec/quotas.md):
 *
 *   {"version":1,"open":true,"users":{"alice":{"bytes":123,"files":4,"countedAt":1700000000000}}}
 *
 * `countedAt` is when a walk last counted the account. Counters change by
 * deltas in memory and are written at most every `flushMs` and at close. A
 * recount made elsewhere (`capstan account set --recount` while the gateway
 * runs) writes an entry with a newer countedAt; `refresh()` and every flush
 * adopt such entries, so the gateway's next write does not undo it.
 *
 * `open` is true from the moment a gateway opens the file as its owner until
 * it closes it: a gateway that finds it true was not stopped cleanly, so the
 * deltas of its last second may be missing, and it forgets every count (each
 * account is recounted at its next upload). Memory: one entry per account
 * with a quota.
 */

interface UsageFile {
  version: 1;
  open?: boolean;
  users: Record<string, Usage>;
}

interface ReadUsage {
  users: Map<string, Usage>;
  open: boolean;
}

async function readUsageFile(path: string): Promise<ReadUsage> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { users: new Map(), open: false };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as UsageFile;
    const users = new Map<string, Usage>();
    for (const [user, u] of Object.entries(parsed.users ?? {})) {
      if (Number.isSafeInteger(u.bytes) && Number.isSafeInteger(u.files) && Number.isFinite(u.countedAt)) users.set(user, u);
    }
    return { users, open: parsed.open === true };
  } catch {
    // A damaged file is only counters: every account is recounted at its next upload.
    return { users: new Map(), open: false };
  }
}

export class UsageBook implements UsageLedger {
  readonly #path: string;
  readonly #log: Logger | undefined;
  readonly #flushMs: number;
  #users: Map<string, Usage>;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;
  /** The gateway's book: written with `open` true until close. A CLI's book keeps the flag as it found it. */
  readonly #owner: boolean;
  #open: boolean;

  private constructor(path: string, read: ReadUsage, opts: { flushMs?: number; logger?: Logger; owner?: boolean }) {
    this.#path = path;
    this.#users = read.users;
    this.#open = read.open;
    this.#owner = opts.owner ?? false;
    this.#flushMs = opts.flushMs ?? 1000;
    this.#log = opts.logger;
  }

  /**
   * Reads the book. As the owner (the gateway), a book left open by a run
   * that did not close it is emptied, and the file is marked open before
   * this resolves.
   */
  static async open(path: string, opts: { flushMs?: number; logger?: Logger; owner?: boolean } = {}): Promise<UsageBook> {
    const read = await readUsageFile(path);
    const book = new UsageBook(path, read, opts);
    if (opts.owner === true) {
      if (read.open && read.users.size > 0) {
        opts.logger?.warn(
          { event: 'quota_usage_unclean', accounts: read.users.size },
          'the last gateway run did not close the usage counters; every account is recounted at its next upload',
        );
        book.#users.clear();
      }
      book.#open = true;
      await book.#write();
    }
    return book;
  }

  async get(user: string): Promise<Usage | undefined> {
    const u = this.#users.get(user);
    return u && { ...u };
  }

  /** A fresh count replaces the counters, unless a later count is already kept. */
  async set(user: string, usage: Usage): Promise<void> {
    const mine = this.#users.get(user);
    if (mine !== undefined && mine.countedAt > usage.countedAt) return;
    this.#users.set(user, { ...usage });
    this.#schedule();
  }

  async delete(user: string): Promise<void> {
    if (this.#users.delete(user)) this.#schedule();
  }

  /** Applies a change; counters never go below zero (a remove of something counted before a recount). */
  async add(user: string, bytes: number, files: number, limit?: Quota): Promise<boolean> {
    const u = this.#users.get(user);
    if (u === undefined) return true; // not counted yet: the walk will see the change
    if (!fitsLimit(u, bytes, files, limit)) return false;
    u.bytes = Math.max(0, u.bytes + bytes);
    u.files = Math.max(0, u.files + files);
    this.#schedule();
    return true;
  }

  /** Adopts entries recounted by someone else since we read them. */
  async refresh(): Promise<void> {
    this.#adopt(await readUsageFile(this.#path));
  }

  #adopt(disk: ReadUsage): void {
    for (const [user, u] of disk.users) {
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
        await this.#write();
      } catch (err) {
        this.#log?.error({ event: 'quota_usage_write_failed', err: (err as Error).name }, 'could not write quota usage file');
      }
    });
    return this.#writing;
  }

  /** Writes the counters a last time (as the owner: marked closed); later changes are kept in memory only. */
  async close(): Promise<void> {
    if (this.#closed) return this.#writing;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#owner) this.#open = false;
    await this.flush();
  }

  #write(): Promise<void> {
    const file: UsageFile = { version: 1, open: this.#open, users: Object.fromEntries(this.#users) };
    return writeFileAtomic(this.#path, JSON.stringify(file) + '\n');
  }
}
