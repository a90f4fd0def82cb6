import { watch, type FSWatcher, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { readFullyAt } from '../util/read-fully.js';
import type { Logger } from '../log.js';
import type { CapValidator } from './account-line.js';
import { MAX_ACCOUNTS_FILE_BYTES, parseAccountsFile, type Account } from './accounts-file.js';
import { applyReload } from './reload-policy.js';

export interface AccountsFileOptions {
  logger: Logger;
  validateCap?: CapValidator | undefined;
  /** Stat fallback period: fs.watch misses changes on some filesystems (NFS, some container mounts). */
  pollIntervalMs?: number;
  /** Quiet time after the last change event before re-reading, so an editor's several writes give one reload. */
  debounceMs?: number;
  maxBytes?: number;
  /** Set false to rely on the periodic stat alone (filesystems where inotify misleads; tests of the fallback). */
  useFsWatch?: boolean;
}

/** What identifies one version of the file; a rename-into-place changes the inode even if size and mtime agree. */
function statSignature(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** Our own refusals carry a message; fs errors are summed up by their errno code (ENOENT, EACCES). */
function describeReadError(err: unknown): string {
  if (err instanceof InvalidInputError) return err.message;
  return (err as NodeJS.ErrnoException).code ?? 'read error';
}

/**
 * The accounts file, loaded at start and re-read whenever it changes, without
 * a restart. Change detection is fs.watch on the directory (so a temp file
 * renamed over the accounts file is seen; watching the file itself would keep
 * watching the old inode) plus a periodic stat as a fallback. What a re-read
 * with errors means is reload-policy.ts; an unreadable file keeps everything.
 */
export class AccountsFile {
  readonly path: string;
  private readonly logger: Logger;
  private readonly validateCap: CapValidator | undefined;
  private readonly debounceMs: number;
  private readonly maxBytes: number;
  private readonly useFsWatch: boolean;
  private current: Map<string, Account> = new Map();
  private loadedSignature: string | undefined;
  private lastProblem: string | undefined;
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private closed = false;
  private generationCount = 0;

  private constructor(path: string, opts: AccountsFileOptions) {
    this.path = resolve(path);
    this.logger = opts.logger.child({ component: 'accounts-file' });
    this.validateCap = opts.validateCap;
    this.debounceMs = opts.debounceMs ?? 200;
    this.maxBytes = opts.maxBytes ?? MAX_ACCOUNTS_FILE_BYTES;
    this.useFsWatch = opts.useFsWatch ?? true;
    const pollIntervalMs = opts.pollIntervalMs ?? 3000;
    this.pollTimer = setInterval(() => void this.poll(), pollIntervalMs);
    this.pollTimer.unref();
  }

  /**
   * Loads the file and starts watching it. Throws InvalidInputError if the file
   * cannot be read at start (a gateway that starts with nobody able to log in
   * because of a wrong path should say so loudly); refused lines are logged.
   */
  static async open(path: string, opts: AccountsFileOptions): Promise<AccountsFile> {
    const file = new AccountsFile(path, opts);
    try {
      const { text, signature } = await file.read();
      file.apply(text, signature);
    } catch (err) {
      await file.close();
      throw new InvalidInputError(`cannot read accounts file ${file.path}: ${describeReadError(err)}`, { cause: err });
    }
    file.startWatching();
    return file;
  }

  /** The account of `user` in force now, if any. */
  get(user: string): Account | undefined {
    return this.current.get(user);
  }

  /** All accounts in force now. A new Map replaces this one on every applied reload; it is never mutated. */
  get accounts(): ReadonlyMap<string, Account> {
    return this.current;
  }

  /** Incremented every time a re-read is applied (including the first load). */
  get generation(): number {
    return this.generationCount;
  }

  /** Re-reads now (SIGHUP, tests). Concurrent calls coalesce into at most one more read. */
  reload(): Promise<void> {
    if (this.running !== undefined) {
      this.rerun = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.rerun = false;
          await this.reloadOnce();
        } while (this.rerun && !this.closed);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.pollTimer);
    clearTimeout(this.debounceTimer);
    await this.running;
  }

  private startWatching(): void {
    if (!this.useFsWatch) return;
    const name = basename(this.path);
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, filename) => {
        // filename can be null on some platforms: then any event may be ours.
        if (filename === null || filename === name) this.schedule();
      });
      this.watcher.on('error', (err) => {
        this.logger.warn({ file: this.path, err: (err as NodeJS.ErrnoException).code }, 'fs.watch failed; relying on periodic stat');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.logger.warn(
        { file: this.path, err: (err as NodeJS.ErrnoException).code },
        'cannot watch accounts directory; relying on periodic stat',
      );
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.reload(), this.debounceMs);
    this.debounceTimer.unref();
  }

  private async poll(): Promise<void> {
    if (this.closed || this.running !== undefined) return;
    let signature: string | undefined;
    try {
      const fh = await open(this.path, 'r');
      try {
        signature = statSignature(await fh.stat());
      } finally {
        await fh.close();
      }
    } catch (err) {
      this.problem(`unreadable (${describeReadError(err)})`);
      return;
    }
    if (signature !== this.loadedSignature) this.schedule();
  }

  private async reloadOnce(): Promise<void> {
    if (this.closed) return;
    let read: { text: string; signature: string };
    try {
      read = await this.read();
    } catch (err) {
      this.problem(`unreadable (${describeReadError(err)})`);
      return;
    }
    if (read.signature === this.loadedSignature) return;
    this.apply(read.text, read.signature);
  }

  /** Reads at most maxBytes (checked before allocating); the signature comes from the same open file, so it describes the text read. */
  private async read(): Promise<{ text: string; signature: string }> {
    const fh = await open(this.path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new InvalidInputError('not a regular file');
      if (st.size > this.maxBytes) throw new InvalidInputError(`larger than ${this.maxBytes} bytes`);
      // One byte more than stat promised: reading it means the file grew under
      // us, and a reload of half an edit could drop users, so retry later.
      const buf = Buffer.alloc(st.size + 1);
      const filled = await readFullyAt(fh.fd, buf, 0);
      if (filled > st.size) throw new InvalidInputError('changed while being read');
      return { text: buf.subarray(0, filled).toString('utf8'), signature: statSignature(st) };
    } finally {
      await fh.close();
    }
  }

  private apply(text: string, signature: string): void {
    this.loadedSignature = signature;
    this.lastProblem = undefined;
    const parsed = parseAccountsFile(text, { validateCap: this.validateCap });
    for (const e of parsed.errors) {
      this.logger.error({ file: this.path, line: e.line }, `accounts file line ${e.line} refused: ${e.message}`);
    }
    const outcome = applyReload(this.current, parsed);
    if (outcome.kind === 'kept') {
      this.logger.error(
        { file: this.path, errors: parsed.errors.length, users: this.current.size },
        'accounts file has no valid line; keeping the accounts loaded before',
      );
      return;
    }
    for (const user of outcome.keptUsers) {
      this.logger.warn({ file: this.path, user }, 'a line for this user was refused; keeping its previous account unchanged');
    }
    this.current = outcome.accounts;
    this.generationCount++;
    const summary = { file: this.path, users: this.current.size, refusedLines: parsed.errors.length, generation: this.generationCount };
    if (this.current.size === 0) this.logger.warn(summary, 'accounts file loaded, but it defines no account: nobody can log in with it');
    else this.logger.info(summary, 'accounts file loaded');
  }

  /** Logs a read problem once per distinct problem, not once per poll. */
  private problem(what: string): void {
    if (this.closed || this.lastProblem === what) return;
    this.lastProblem = what;
    // Forget the signature so the file's return (even with identical stat) is re-read.
    this.loadedSignature = undefined;
    this.logger.error({ file: this.path, users: this.current.size }, `accounts file ${what}; keeping the accounts loaded before`);
  }
}
