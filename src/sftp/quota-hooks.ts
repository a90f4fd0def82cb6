import type { QuotaGuard } from '../quota/index.js';
import { sizeOf } from './attrs.js';
import type { UserTree } from './user-tree.js';
import type { WriteHandle } from './write-handle.js';

/**
 * Where one SFTP session meets the account's quota (src/quota/guard.ts states
 * the exact semantics): OPEN for writing, WRITE, commit (CLOSE, fsync) and
 * REMOVE. Accounts without a quota pay one map lookup per OPEN and REMOVE.
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

  /**
   * Size of the file a path names now; undefined if none (or not a file).
   * Without `followLast` a link is the entry itself: counted, with no bytes.
   */
  async #fileSize(path: string, followLast = true): Promise<number | undefined> {
    try {
      const node = await this.view.node(path, followLast);
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

  /** Runs a commit under the quota: checked against what the name holds now, then counted. */
  async commit(handle: WriteHandle, commit: () => Promise<boolean>): Promise<boolean> {
    const tracked = handle.needsCommit ? this.#tracked.get(handle) : undefined;
    if (tracked === undefined) return commit();
    // What the name holds now (another session may have changed it since OPEN).
    const entry = await handle.target.dir.lookup(handle.target.name);
    const replaced = entry === undefined ? undefined : sizeOf(entry.cap, entry.metadata);
    await this.guard.checkSize(this.view.user, this.view.root, handle.size, replaced);
    const linked = await commit();
    if (linked) {
      this.guard.record(this.view.user, handle.size - (replaced ?? 0), replaced === undefined ? 1 : 0);
      tracked.replaced = handle.size; // a later fsync or CLOSE replaces this version
    }
    return linked;
  }

  /** Runs a SYMLINK under the quota: a link costs one entry and no bytes (so only the file count can refuse it). */
  async symlink(path: string, create: () => Promise<void>): Promise<void> {
    if (!(await this.#inForce())) return create();
    await this.guard.checkEntry(this.view.user, this.view.root);
    await create();
    this.guard.record(this.view.user, 0, 1);
  }

  /** Runs a REMOVE and counts the file (or link) it took away. */
  async remove(path: string, remove: () => Promise<void>): Promise<void> {
    const size = (await this.#inForce()) ? await this.#fileSize(path, false) : undefined;
    await remove();
    if (size !== undefined) this.guard.record(this.view.user, -size, -1);
  }
}
