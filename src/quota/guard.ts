import { stat } from 'node:fs/promises';
import type { DirectoryCap } from '../cap/index.js';
import { QuotaExceededError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DirEntry, Tree } from '../tree/index.js';
import { countTree, entryUsage, type TreeUsage } from './count.js';
import type { Usage, UsageLedger } from './ledger.js';
import { readQuotas, type Quota } from './quotas-file.js';

/**
 * Quota enforcement as the SFTP frontend asks for it (docs/spec/quotas.md
 * has the rules and the crash argument; docs/operations.md, Quotas, the
 * user's view):
 *
 * - Usage is the account's logical tree: the sizes and number of the files
 *   reachable from its root cap (count.ts). It is counted by a walk the
 *   first time an account with a quota is used without a count, and by
 *   `capstan account set --recount`, then kept exact by deltas in the
 *   ledger, which every gateway of one slot database shares.
 * - Every change is counted from what its own atomic directory update
 *   replaced, not from an earlier look: a link (upload commit, hardlink,
 *   symbolic link, SETSTAT size) reserves what it adds inside that update
 *   (`reservation`), a remove and a rename over a name give back what the
 *   update took away (`record`, after it).
 * - A reservation is a conditional add: of racing commits, through any
 *   gateways, only those that fit the quota land; the others fail with
 *   QuotaExceededError and link nothing.
 * - Positive deltas are added before the change they count, negative ones
 *   after it: a crash in between leaves the counters higher than the tree,
 *   never lower, so no crash lets an account pass its quota.
 * - Early checks (OPEN, WRITE) compare an upload with committed usage and
 *   fail it before its bytes are stored; the reservation at commit decides.
 * - The quotas file is re-read when its modification time changes (looked
 *   at most every `reloadMs`), so `capstan account set --quota` takes effect
 *   on a running gateway; the ledger is refreshed then too.
 */

export interface QuotaGuardOptions {
  quotasFile: string;
  usage: UsageLedger;
  /** The file a UsageBook keeps (looked at for recounts made by the CLI); none for a shared ledger. */
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
  /** Accounts seen without a quota, their counters already forgotten (once per account and process, not per request). */
  readonly #unlimited = new Set<string>();

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
      if (!this.#unlimited.has(user)) {
        this.#unlimited.add(user);
        await this.#opts.usage.delete(user);
      }
      return undefined;
    }
    this.#unlimited.delete(user);
    return quota;
  }

  /** Current usage, counted by a walk on first use (one walk per account at a time in this process). */
  async usageOf(user: string, root: DirectoryCap): Promise<Usage> {
    const known = await this.#opts.usage.get(user);
    if (known !== undefined) return known;
    return this.#count(user, root);
  }

  /**
   * Adds (bytes, files) to a counted account if they fit its quota, else
   * refuses with QuotaExceededError and changes nothing. Accounts without a
   * quota are not counted.
   */
  async reserve(user: string, root: DirectoryCap, bytes: number, files: number): Promise<void> {
    const quota = await this.quotaOf(user);
    if (quota === undefined) return;
    await this.usageOf(user, root);
    if (await this.#opts.usage.add(user, bytes, files, quota)) return;
    const usage = await this.usageOf(user, root);
    this.#refuse(user, quota.bytes !== undefined && bytes > 0 && usage.bytes + bytes > quota.bytes ? 'bytes' : 'files');
  }

  /**
   * A link's reservation (see LinkReservation): pass `beforeLink` to the
   * link, then `settle` once it is known whether the link landed. Undefined
   * when the account has no quota.
   */
  async reservation(user: string, root: DirectoryCap, adds: TreeUsage): Promise<LinkReservation | undefined> {
    if ((await this.quotaOf(user)) === undefined) return undefined;
    // Counted now, so the reservation inside the directory update never walks the tree.
    await this.usageOf(user, root);
    return new LinkReservation(this, user, root, adds);
  }

  /** Records a change made (removes and renames over a name, after the fact). Never throws: a failure is logged and the account recounted. */
  async record(user: string, bytes: number, files: number): Promise<void> {
    if (bytes === 0 && files === 0) return;
    try {
      await this.#opts.usage.add(user, bytes, files);
    } catch (err) {
      this.#log.error(
        { event: 'quota_usage_update_failed', user, err: (err as Error)?.name },
        'usage counter not updated; the account is recounted',
      );
      await this.#opts.usage.delete(user).catch(() => undefined);
    }
  }

  #count(user: string, root: DirectoryCap): Promise<Usage> {
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
        await this.#opts.usage.set(user, usage);
        this.#log.info(
          { event: 'quota_counted', user, bytes: usage.bytes, files: usage.files, ms: Date.now() - started },
          'account usage counted',
        );
        return (await this.#opts.usage.get(user)) ?? usage;
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

  /** Would the account still fit if a file of `replacedSize` (0: none) became `newSize` bytes? */
  async checkSize(user: string, root: DirectoryCap, newSize: number, replaced: number | undefined): Promise<void> {
    const quota = await this.quotaOf(user);
    if (quota === undefined) return;
    const usage = await this.usageOf(user, root);
    const delta = newSize - (replaced ?? 0);
    if (quota.bytes !== undefined && delta > 0 && usage.bytes + delta > quota.bytes) this.#refuse(user, 'bytes');
    if (quota.files !== undefined && replaced === undefined && usage.files + 1 > quota.files) this.#refuse(user, 'files');
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

/**
 * What one link reserves: `beforeLink` runs inside the directory update
 * that links (once per attempt) and reserves whatever the link adds beyond
 * what earlier attempts reserved, given what the name holds at that attempt
 * (a refusal aborts the update: nothing is linked). `settle` then gives
 * back, after the update, what was reserved but not added (the link failed,
 * or its winning attempt replaced more than an earlier one). So positive
 * deltas always come before the change and negative ones after it.
 */
export class LinkReservation {
  #reserved: TreeUsage = { bytes: 0, files: 0 };
  #delta: TreeUsage | undefined;

  constructor(
    private readonly guard: QuotaGuard,
    private readonly user: string,
    private readonly root: DirectoryCap,
    private readonly adds: TreeUsage,
  ) {}

  readonly beforeLink = async (existing: DirEntry | undefined): Promise<void> => {
    const freed = entryUsage(existing);
    const delta = { bytes: this.adds.bytes - freed.bytes, files: this.adds.files - freed.files };
    const more = { bytes: Math.max(0, delta.bytes - this.#reserved.bytes), files: Math.max(0, delta.files - this.#reserved.files) };
    if (more.bytes > 0 || more.files > 0) {
      await this.guard.reserve(this.user, this.root, more.bytes, more.files);
      this.#reserved = { bytes: this.#reserved.bytes + more.bytes, files: this.#reserved.files + more.files };
    }
    this.#delta = delta;
  };

  /** After the link: `linked` says whether its update landed. Never throws. */
  async settle(linked: boolean): Promise<void> {
    const kept = linked && this.#delta !== undefined ? this.#delta : { bytes: 0, files: 0 };
    await this.guard.record(this.user, kept.bytes - this.#reserved.bytes, kept.files - this.#reserved.files);
    this.#reserved = kept;
  }
}
