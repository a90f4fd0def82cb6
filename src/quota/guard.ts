import { stat } from 'node:fs/promises';
import type { DirectoryCap } from '../cap/index.js';
import { QuotaExceededError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Tree } from '../tree/index.js';
import { countTree } from './count.js';
import { readQuotas, type Quota } from './quotas-file.js';
import type { UsageBook, Usage } from './usage.js';

/**
 * Quota enforcement as the SFTP frontend asks for it. Semantics (exact):
 *
 * - Usage is the account's logical tree: the sizes and number of the files
 *   reachable from its root cap. It is counted by a walk the first time an
 *   account with a quota opens a file for writing (and by `capstan account
 *   set --recount`), then kept up to date by deltas: a commit (CLOSE, fsync)
 *   adds new size − replaced size (and one file if the name was new); a
 *   REMOVE subtracts the file's size and one file.
 * - Checks: OPEN for writing is refused when the account is at or over its
 *   byte quota, or at its file quota and the name does not exist yet;
 *   a WRITE is refused when the handle's new size would take the account
 *   past its byte quota (counting the file it replaces as freed), and the
 *   frontend then drops that upload whole (CLOSE links nothing); CLOSE is
 *   refused when the final size would (the previous version then stays).
 *   Refusals are QuotaExceededError → SFTP FAILURE "quota exceeded".
 * - Approximate, by design: uploads running at once in several sessions
 *   are each checked against the committed usage, so together they can
 *   pass the quota by what they hold open; changes that do not pass through
 *   these hooks (a rename over an existing file, hardlink, SETSTAT size, a
 *   write through /uri/ into a directory outside the account's tree, another
 *   gateway writing the same tree) make the counters drift until the next
 *   recount. Counters never go below zero.
 * - The quotas file is re-read when its modification time changes (looked
 *   at most every `reloadMs`), so `capstan account set --quota` takes effect
 *   on a running gateway; the usage file is refreshed then too.
 */

export interface QuotaGuardOptions {
  quotasFile: string;
  usage: UsageBook;
  usageFile?: string;
  tree: Tree;
  logger: Logger;
  reloadMs?: number;
}

export class QuotaGuard {
  readonly #opts: QuotaGuardOptions;
  readonly #log: Logger;
  #quotas = new Map<string, Quota>();
  #quotasMtime = -1;
  #usageMtime = -1;
  #checkedAt = 0;
  readonly #counting = new Map<string, Promise<Usage>>();

  private constructor(opts: QuotaGuardOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'quota' });
  }

  static async open(opts: QuotaGuardOptions): Promise<QuotaGuard> {
    const guard = new QuotaGuard(opts);
    await guard.#reload(true);
    return guard;
  }

  /** The account's quota, or undefined (no quota: nothing is counted or checked). */
  async quotaOf(user: string): Promise<Quota | undefined> {
    await this.#reload(false);
    const quota = this.#quotas.get(user);
    if (quota === undefined || (quota.bytes === undefined && quota.files === undefined)) {
      // Counters kept while there was no quota would be stale when one is set again.
      this.#opts.usage.delete(user);
      return undefined;
    }
    return quota;
  }

  /** Current usage, counted by a walk on first use (one walk per account at a time). */
  async usageOf(user: string, root: DirectoryCap): Promise<Usage> {
    const known = this.#opts.usage.get(user);
    if (known !== undefined) return known;
    let counting = this.#counting.get(user);
    if (counting === undefined) {
      counting = (async () => {
        const started = Date.now();
        let counted: Awaited<ReturnType<typeof countTree>>;
        try {
          counted = await countTree(this.#opts.tree, root);
        } catch (err) {
          // Fail closed: the upload that asked is refused with this error; the next one walks again.
          this.#log.error({ event: 'quota_count_failed', user, err: (err as Error)?.name }, 'could not count account usage');
          throw err;
        }
        const usage = { ...counted, countedAt: Date.now() };
        this.#opts.usage.set(user, usage);
        this.#log.info(
          { event: 'quota_counted', user, bytes: usage.bytes, files: usage.files, ms: Date.now() - started },
          'account usage counted',
        );
        return usage;
      })().finally(() => this.#counting.delete(user));
      this.#counting.set(user, counting);
    }
    return counting;
  }

  /** OPEN for writing. `exists` is asked only when the file count is at its limit. */
  async checkOpen(user: string, root: DirectoryCap, exists: () => Promise<boolean>): Promise<void> {
    const quota = await this.quotaOf(user);
    if (quota === undefined) return;
    const usage = await this.usageOf(user, root);
    if (quota.bytes !== undefined && usage.bytes >= quota.bytes) this.#refuse(user, 'bytes');
    if (quota.files !== undefined && usage.files >= quota.files && !(await exists())) this.#refuse(user, 'files');
  }

  /** Before a new entry that holds no bytes (a symbolic link): only the file count is checked. */
  async checkEntry(user: string, root: DirectoryCap): Promise<void> {
    const quota = await this.quotaOf(user);
    if (quota === undefined) return;
    const usage = await this.usageOf(user, root);
    if (quota.files !== undefined && usage.files >= quota.files) this.#refuse(user, 'files');
  }

  /** Would the account still fit if a file of `replacedSize` (0: none) became `newSize` bytes? */
  async checkSize(user: string, root: DirectoryCap, newSize: number, replaced: number | undefined): Promise<void> {
    const quota = await this.quotaOf(user);
    if (quota === undefined) return;
    const usage = await this.usageOf(user, root);
    const delta = newSize - (replaced ?? 0);
    if (quota.bytes !== undefined && delta > 0 && usage.bytes + delta > quota.bytes) this.#refuse(user, 'bytes');
    if (quota.files !== undefined && replaced === undefined && usage.files + 1 > quota.files) this.#refuse(user, 'files');
  }

  /** Records a committed change (only for accounts being counted). */
  record(user: string, bytes: number, files: number): void {
    this.#opts.usage.add(user, bytes, files);
  }

  async close(): Promise<void> {
    await this.#opts.usage.close();
  }

  #refuse(user: string, what: 'bytes' | 'files'): never {
    this.#log.info({ event: 'quota_exceeded', user, quota: what }, 'quota exceeded');
    throw new QuotaExceededError(`${what} quota exceeded`);
  }

  async #reload(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.#checkedAt < (this.#opts.reloadMs ?? 2000)) return;
    this.#checkedAt = now;
    const mtime = await stat(this.#opts.quotasFile).then(
      (s) => s.mtimeMs,
      () => 0,
    );
    if (mtime !== this.#quotasMtime) {
      try {
        this.#quotas = await readQuotas(this.#opts.quotasFile);
        this.#quotasMtime = mtime;
        if (!force) this.#log.info({ event: 'quotas_reloaded', accounts: this.#quotas.size }, 'quotas file reloaded');
      } catch (err) {
        if (force) throw err;
        // A broken edit keeps the quotas in force, as a broken accounts file keeps the accounts.
        this.#log.error({ event: 'quotas_reload_failed', err: (err as Error).message }, 'quotas file not reloaded; previous quotas kept');
        this.#quotasMtime = mtime;
      }
    }
    if (this.#opts.usageFile !== undefined) {
      const usageMtime = await stat(this.#opts.usageFile).then(
        (s) => s.mtimeMs,
        () => 0,
      );
      if (usageMtime !== this.#usageMtime) {
        this.#usageMtime = usageMtime;
        await this.#opts.usage.refresh();
      }
    }
  }
}
