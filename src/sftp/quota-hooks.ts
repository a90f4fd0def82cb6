import { provesNothingCommitted } from '../errors.js';
import { entryUsage, type Quota, type QuotaGuard, type TreeUsage, type Usage } from '../quota/index.js';
import type { DirEntry, LinkOptions } from '../tree/index.js';
import { sizeOf } from './attrs.js';
import type { UserTree } from './user-tree.js';
import type { WriteHandle } from './write-handle.js';

/** An account's quota and its counted usage, for statvfs (extensions.ts). */
export interface QuotaSpace {
  quota: Quota;
  usage: Usage;
}

/** What a link under a quota calls inside its directory update (LinkOptions.beforeLink). */
export type BeforeLink = NonNullable<LinkOptions['beforeLink']>;

/**
 * Where one SFTP session meets the account's quota (src/quota/guard.ts and
 * docs/spec/quotas.md state the rules): early checks at OPEN and WRITE, a
 * reservation inside every link (upload commit, hardlink, symbolic link,
 * SETSTAT size), and what a remove or a rename over a name took away.
 * Accounts without a quota pay one map lookup per change.
 */
export class SessionQuota {
  /** Write handles opened under a quota → size of the file they replace (undefined: a new name). */
  readonly #tracked = new WeakMap<WriteHandle, { replaced: number | undefined }>();

  constructor(
    private readonly guard: QuotaGuard,
    private readonly view: UserTree,
  ) {}

  /** The guard, if this account has a quota now. */
  async #inForce(): Promise<boolean> {
    return (await this.guard.quotaOf(this.view.user)) !== undefined;
  }

  /** The account's quota and usage (counted by a walk on first use), or undefined without a quota. */
  async space(): Promise<QuotaSpace | undefined> {
    const quota = await this.guard.quotaOf(this.view.user);
    if (quota === undefined) return undefined;
    return { quota, usage: await this.guard.usageOf(this.view.user, this.view.root) };
  }

  /** Size of the file a path names now; undefined if none (or not a file). */
  async #fileSize(path: string): Promise<number | undefined> {
    try {
      const node = await this.view.node(path, true);
      if (node.kind === 'symlink') return 0;
      return node.kind === 'file' ? sizeOf(node.cap, node.entry?.metadata) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Before OPEN for writing; returns what `opened` needs. Throws QuotaExceededError. */
  async beforeOpen(path: string): Promise<{ replaced: number | undefined } | undefined> {
    if (!(await this.#inForce())) return undefined;
    const replaced = await this.#fileSize(path);
    await this.guard.checkOpen(this.view.user, this.view.root, async () => replaced !== undefined);
    return { replaced };
  }

  opened(handle: WriteHandle, token: { replaced: number | undefined } | undefined): void {
    if (token !== undefined) this.#tracked.set(handle, token);
  }

  /** Before a WRITE that may grow the file; a refusal drops the upload (CLOSE then links nothing). */
  async beforeWrite(handle: WriteHandle, offset: number, length: number): Promise<void> {
    const tracked = this.#tracked.get(handle);
    if (tracked === undefined) return;
    const end = (handle.append ? handle.size : offset) + length;
    if (end <= handle.size) return;
    try {
      await this.guard.checkSize(this.view.user, this.view.root, end, tracked.replaced);
    } catch (err) {
      await handle.abandon();
      throw err;
    }
  }

  /**
   * Before SETSTAT size grows an upload (`handle`) or a committed file of
   * `current` bytes (no handle) to `size`: refused now, not once the new
   * size was sealed and the link's reservation refuses it. Nothing is
   * dropped: the file or upload stays as it was.
   */
  async beforeResize(handle: WriteHandle | undefined, current: number, size: number): Promise<void> {
    if (size <= current || !(await this.#inForce())) return;
    // Another session's upload is not tracked here: taken as replacing what it holds now.
    const tracked = handle === undefined ? undefined : this.#tracked.get(handle);
    const replaced = tracked === undefined ? current : tracked.replaced;
    await this.guard.checkSize(this.view.user, this.view.root, size, replaced);
  }

  /**
   * Runs a link that adds `adds` (less what it replaces) under the quota:
   * `run` passes `beforeLink` to the link, which reserves inside the update;
   * afterwards what was reserved and not added is given back. An error that
   * may have come after the update landed keeps the reservation (the
   * counters may then be high, never low).
   */
  async link<T>(
    adds: TreeUsage,
    run: (beforeLink: BeforeLink | undefined) => Promise<T>,
    landed: (result: T) => boolean = () => true,
  ): Promise<T> {
    const reservation = await this.guard.reservation(this.view.user, this.view.root, adds);
    if (reservation === undefined) return run(undefined);
    let result: T;
    try {
      result = await run(reservation.beforeLink);
    } catch (err) {
      if (provesNothingCommitted(err)) await reservation.settle(false);
      throw err;
    }
    await reservation.settle(landed(result));
    return result;
  }

  /** Runs an upload's commit (CLOSE, fsync, SETSTAT size) under the quota. */
  async commit(handle: WriteHandle, commit: (beforeLink: BeforeLink | undefined) => Promise<boolean>): Promise<boolean> {
    if (!handle.needsCommit) return commit(undefined);
    const linked = await this.link({ bytes: handle.size, files: 1 }, commit, (l) => l);
    const tracked = this.#tracked.get(handle);
    if (linked && tracked !== undefined) tracked.replaced = handle.size; // a later fsync or CLOSE replaces this version
    return linked;
  }

  /** After a change took `entry` away (REMOVE, a rename over a name); nothing: nothing was taken. */
  async removed(entry: DirEntry | undefined): Promise<void> {
    if (entry === undefined || !(await this.#inForce())) return;
    const gone = entryUsage(entry);
    await this.guard.record(this.view.user, -gone.bytes, -gone.files);
  }
}
