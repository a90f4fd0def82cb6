import type { Cap, DirectoryCap, DirectoryWriteCap } from '../../cap/index.js';
import { addressKey } from '../../store/address.js';
import type { ChunkAddress } from '../../store/chunks/chunk-store.js';
import { backoffDelay, sleep } from '../../util/backoff.js';
import { XCHACHA_NONCE_BYTES } from '../../crypto/index.js';
import {
  AlreadyExistsError,
  ConflictError,
  DirectoryRemovedError,
  NotEmptyError,
  NotFoundError,
  PermissionError,
  TransientError,
  throwIfAborted,
  type AbortOptions,
  IntegrityError,
} from '../../errors.js';
import type { DirEntry, Directory, DirectoryNodeView, EntryMetadata, LinkOptions, MkdirOptions } from '../api.js';
import { nameBytes, checkName } from '../names.js';
import { loadNode, type DirectoryContext } from './context.js';
import { Draft } from './draft.js';
import { checkMetadata, makeEntry, patchMetadata, storeCap, viewEntry } from './entries.js';
import { DirectoryKeys } from './keys.js';
import { nodeCount, type StoredEntry } from './node-format.js';
import { encodeSlotRecord, verifySlotRecord, type SlotVersion } from './slot-record.js';
import { walkVersion } from './walk.js';

/** Pauses between compare-and-swap attempts: from about 1 ms, doubling, never over 200 ms (src/util/backoff.ts). */
const SWAP_BACKOFF = { initialMs: 1, maxMs: 200 };

/**
 * A directory seen through one cap. Holds no state about the directory's
 * contents: every operation starts by reading and verifying the slot, so
 * several gateways (or Tree instances) on one slot store see each other's
 * changes at once; decoded nodes come from the Tree's shared cache, which
 * needs no invalidation because nodes are immutable.
 */
export class DirectoryHandle implements Directory {
  readonly writable: boolean;
  private readonly keys: DirectoryKeys;

  constructor(
    private readonly ctx: DirectoryContext,
    readonly cap: DirectoryCap,
  ) {
    this.keys = DirectoryKeys.of(cap);
    this.writable = this.keys.writer !== undefined;
  }

  /** The storage index in hex (public; names the directory in errors and logs). */
  get storageIndexHex(): string {
    return this.keys.siHex;
  }

  /** The current version, sealed or not (seal and unseal need to see a sealed one). */
  private async readAnyVersion(options: AbortOptions): Promise<SlotVersion> {
    throwIfAborted(options.signal);
    if (this.keys.epoch !== undefined) return this.readVersionAt(this.keys.epoch, options);
    // The watermark as it was before asking: a swap landing while the get is in flight may raise it
    // past what the store (correctly) answered at the moment it was asked.
    const seen = this.ctx.watermarks.highest(this.keys.storageIndex);
    const entry = await this.ctx.slots.get(this.keys.storageIndex, options);
    if (!entry) {
      // Slots are never deleted: one seen before and missing now is withheld.
      if (seen !== undefined) throw this.rolledBack(seen, undefined);
      throw new NotFoundError(`directory ${this.keys.siHex} has no slot`);
    }
    const { verifiedSlots } = this.ctx;
    const known = verifiedSlots.get(this.keys.siHex, entry);
    const version = known ?? verifySlotRecord(this.keys.publicKey, this.keys.siHex, entry);
    if (seen !== undefined && version.seq < seen) throw this.rolledBack(seen, version.seq);
    // A hit is already kept (and was made the most recent by get): no second copy of the record.
    if (known === undefined) verifiedSlots.set(this.keys.siHex, entry.record, version);
    this.ctx.watermarks.saw(this.keys.storageIndex, version.seq);
    return version;
  }

  /**
   * The version at a snapshot's epoch: verified like a current one (cached
   * under its own key, never as the current one), and not held to the watermark (a snapshot is
   * old by design; docs/spec/snapshots.md, Store rules).
   */
  private async readVersionAt(epoch: bigint, options: AbortOptions): Promise<SlotVersion> {
    const history = this.ctx.slots.history;
    if (history === undefined) throw new NotFoundError('this slot store keeps no snapshots');
    const entry = await history.getAt(this.keys.storageIndex, epoch, options);
    if (!entry) throw new NotFoundError(`directory ${this.keys.siHex} did not exist at that snapshot`);
    const cacheKey = `${this.keys.siHex}@${epoch}`;
    const known = this.ctx.verifiedSlots.get(cacheKey, entry);
    const version = known ?? verifySlotRecord(this.keys.publicKey, this.keys.siHex, entry);
    if (known === undefined) this.ctx.verifiedSlots.set(cacheKey, entry.record, version);
    return version;
  }

  /** A rollback: told to the Tree's owner (the gateway logs it), and an IntegrityError for the caller. */
  private rolledBack(seen: bigint, got: bigint | undefined): IntegrityError {
    this.ctx.onRollback?.({ storageIndex: this.keys.siHex, seen, got });
    return new IntegrityError(this.keys.siHex, `directory version (older than one already seen)`);
  }

  /** The current version of a directory that exists: a sealed one was removed by rmdir (NotFoundError). */
  private async readVersion(options: AbortOptions): Promise<SlotVersion> {
    const version = await this.readAnyVersion(options);
    if (version.sealed) throw new DirectoryRemovedError(`directory ${this.keys.siHex} was removed`);
    return version;
  }

  async *list(options: AbortOptions = {}): AsyncIterable<DirEntry> {
    const version = await this.readVersion(options);
    for await (const { entries, nodeId } of walkVersion(this.ctx, this.keys, version.root, { ...options, everyNode: false })) {
      for (const entry of entries) yield viewEntry(this.keys, entry, nodeId);
    }
  }

  async *nodes(options: AbortOptions = {}): AsyncIterable<DirectoryNodeView> {
    const version = await this.readVersion(options);
    for await (const { entries, nodeId } of walkVersion(this.ctx, this.keys, version.root, { ...options, everyNode: true })) {
      yield { address: nodeId, entries: entries.map((entry) => viewEntry(this.keys, entry, nodeId)) };
    }
  }

  async lookup(name: string, options: AbortOptions = {}): Promise<DirEntry | undefined> {
    const utf8 = nameBytes(checkName(name));
    const version = await this.readVersion(options);
    const found = await new Draft(this.ctx, this.keys, version.root, options).get(utf8);
    return found && viewEntry(this.keys, found, addressKey(version.root));
  }

  async count(options: AbortOptions = {}): Promise<number> {
    const version = await this.readVersion(options);
    return nodeCount(await loadNode(this.ctx, this.keys, version.root, undefined, options));
  }

  async link(name: string, cap: Cap, metadata: EntryMetadata, options: LinkOptions = {}): Promise<DirEntry | undefined> {
    const checked = checkName(name);
    const meta = checkMetadata(metadata);
    this.requireWriter();
    const entry = makeEntry(checked, storeCap(this.keys, cap, this.nonce), meta);
    const replaced = await this.mutate(options, async (draft) => {
      const existing = await draft.get(entry.nameUtf8);
      const view = existing && this.checkReplace(existing, options);
      await options.beforeLink?.(view);
      const kept = options.keepExecutable === true && existing?.metadata.executable === true && !meta.executable;
      await draft.set(kept ? { ...entry, metadata: { ...meta, executable: true } } : entry);
      return view;
    });
    return replaced;
  }

  async swapEntry(
    name: string,
    expected: Cap | null,
    next: { cap: Cap; metadata: EntryMetadata } | null,
    options: AbortOptions & { expectedMetadata?: EntryMetadata | undefined } = {},
  ): Promise<boolean> {
    const utf8 = nameBytes(checkName(name));
    this.requireWriter();
    const want = expected?.toString();
    const replacement =
      next === null ? undefined : makeEntry(checkName(name), storeCap(this.keys, next.cap, this.nonce), checkMetadata(next.metadata));
    return this.mutate(options, async (draft) => {
      const entry = await draft.get(utf8);
      const holds = entry === undefined ? undefined : viewEntry(this.keys, entry, this.keys.siHex).cap.toString();
      if (holds !== want) return false;
      const { expectedMetadata } = options;
      if (entry !== undefined && expectedMetadata !== undefined && !sameMetadata(entry.metadata, expectedMetadata)) return false;
      if (replacement !== undefined) await draft.set(replacement);
      else if (entry !== undefined) await draft.delete(utf8);
      return true;
    });
  }

  async seal(options: AbortOptions = {}): Promise<boolean> {
    return this.update(options, async (current) => {
      if (current.sealed) return { result: true };
      const root = await loadNode(this.ctx, this.keys, current.root, undefined, options);
      if (nodeCount(root) > 0) throw new NotEmptyError('directory not empty');
      // A shared directory has other names that must keep working: checked empty, never sealed.
      if (current.shared) return { result: false };
      return { next: { root: current.root, sealed: true, shared: false }, result: true };
    });
  }

  async unseal(options: AbortOptions = {}): Promise<void> {
    await this.update(options, async (current) => ({
      ...(current.sealed ? { next: { root: current.root, sealed: false, shared: current.shared } } : {}),
      result: undefined,
    }));
  }

  async share(options: AbortOptions = {}): Promise<void> {
    await this.update(options, async (current) => {
      if (current.sealed) throw new DirectoryRemovedError(`directory ${this.keys.siHex} was removed`);
      return { ...(current.shared ? {} : { next: { root: current.root, sealed: false, shared: true } }), result: undefined };
    });
  }

  async unlink(name: string, options: AbortOptions = {}): Promise<DirEntry> {
    const utf8 = nameBytes(checkName(name));
    this.requireWriter();
    const removed = await this.mutate(options, async (draft) => {
      const entry = await draft.delete(utf8);
      if (!entry) throw new NotFoundError('no such entry');
      return entry;
    });
    return viewEntry(this.keys, removed, this.keys.siHex);
  }

  async setMetadata(name: string, patch: Partial<EntryMetadata>, options: AbortOptions = {}): Promise<DirEntry> {
    const utf8 = nameBytes(checkName(name));
    this.requireWriter();
    const updated = await this.mutate(options, async (draft) => {
      const entry = await draft.get(utf8);
      if (!entry) throw new NotFoundError('no such entry');
      // noWrite guards the entry's contents and name, not its metadata: this is how it is cleared again.
      const metadata = patchMetadata(entry.metadata, patch);
      if (sameMetadata(metadata, entry.metadata)) return entry;
      const next: StoredEntry = { ...entry, metadata };
      await draft.set(next);
      return next;
    });
    return viewEntry(this.keys, updated, this.keys.siHex);
  }

  async rename(from: string, to: string, options: LinkOptions = {}): Promise<DirEntry | undefined> {
    const fromName = checkName(from);
    const toName = checkName(to);
    this.requireWriter();
    const fromUtf8 = nameBytes(fromName);
    const toUtf8 = nameBytes(toName);
    return this.mutate(options, async (draft) => {
      const entry = await draft.get(fromUtf8);
      if (!entry) throw new NotFoundError('no such entry');
      if (fromName === toName) return undefined;
      const target = await draft.get(toUtf8);
      const replaced = target && this.checkReplace(target, options);
      await draft.delete(fromUtf8);
      await draft.set({ ...entry, name: toName, nameUtf8: toUtf8 });
      return replaced;
    });
  }

  async mkdir(name: string, metadata: Partial<EntryMetadata> = {}, options: MkdirOptions = {}): Promise<DirectoryWriteCap> {
    const checked = checkName(name);
    this.requireWriter();
    const now = Date.now();
    const meta = checkMetadata({ size: 0, mtimeMs: now, ctimeMs: now, ...definedOnly(metadata) });
    // Checked first only to avoid making an orphan in the common case; the
    // link below is what decides (a racing writer may take the name in
    // between, and then the new child is an unreachable, harmless orphan).
    if (await this.lookup(checked, options)) throw new AlreadyExistsError('entry exists');
    const child = await this.ctx.createDirectory(options);
    await options.beforeLink?.(child);
    await this.link(checked, child, meta, { signal: options.signal, overwrite: false });
    return child;
  }

  private readonly nonce = (): Uint8Array => this.ctx.randomBytes(XCHACHA_NONCE_BYTES);

  private requireWriter(): NonNullable<DirectoryKeys['writer']> {
    if (!this.keys.writer) throw new PermissionError('directory is read-only');
    return this.keys.writer;
  }

  /** Applies the refusals of a link over an existing entry; returns the entry as this view sees it. */
  private checkReplace(existing: StoredEntry, options: LinkOptions): DirEntry {
    if (!options.overwrite) throw new AlreadyExistsError('entry exists');
    if (existing.metadata.noWrite) throw new PermissionError('entry is read-only');
    const view = viewEntry(this.keys, existing, this.keys.siHex);
    options.replacing?.(view);
    return view;
  }

  /**
   * Read the slot, edit, write the new nodes, compare-and-swap seq → seq+1;
   * on a lost swap start over from the new version. `edit` may run several
   * times and must only touch the draft. A sealed directory (removed by
   * rmdir) takes no edit: NotFoundError, as for a directory that is gone.
   */
  private mutate<T>(options: AbortOptions, edit: (draft: Draft) => Promise<T>): Promise<T> {
    return this.update(options, async (current) => {
      if (current.sealed) throw new DirectoryRemovedError(`directory ${this.keys.siHex} was removed`);
      const draft = new Draft(this.ctx, this.keys, current.root, options);
      const result = await edit(draft);
      if (!draft.changed) return { result };
      // The shared flag outlives every change: any version may be the one a later rmdir reads.
      const next = { root: await draft.commit(), sealed: false, shared: current.shared };
      return { next, result, superseded: draft.superseded };
    });
  }

  /**
   * The update loop every change runs (docs/spec/slots.md): `step` looks at
   * the current version and says what the next one is (or none: nothing to
   * write), then the slot is swapped from the version `step` saw. Mutations
   * of one directory through this Tree queue behind each other (they would
   * only conflict); other Trees and gateways are kept honest by the swap
   * alone. `step` may run several times.
   */
  private async update<T>(
    options: AbortOptions,
    step: (current: SlotVersion) => Promise<{
      next?: { root: ChunkAddress; sealed: boolean; shared: boolean };
      result: T;
      /** Cached nodes the next version no longer reaches, dropped once it is the slot's. */
      superseded?: readonly string[];
    }>,
  ): Promise<T> {
    const writer = this.requireWriter();
    const { storageIndex, siHex } = this.keys;
    return this.ctx.locks.run(siHex, async () => {
      for (let attempt = 0; attempt < this.ctx.maxAttempts; attempt++) {
        const current = await this.readAnyVersion(options);
        const { next, result, superseded } = await step(current);
        if (next === undefined) return result;
        const version: SlotVersion = { seq: current.seq + 1n, ...next };
        const record = encodeSlotRecord(writer.signingKey, storageIndex, version);
        try {
          await this.ctx.slots.compareAndSwap(storageIndex, current.seq, { seq: version.seq, record }, options);
          this.ctx.verifiedSlots.set(siHex, record, version);
          this.ctx.watermarks.saw(storageIndex, version.seq);
          // They would otherwise stay until pushed out, and push out nodes of current versions first:
          // in a directory of 12,000 entries, a lookup after each of 300 uploads missed 1 time in 5.
          for (const id of superseded ?? []) this.ctx.cache.delete(siHex, id);
          this.ctx.onUpdate?.({ storageIndex: siHex, attempts: attempt + 1, committed: true });
          return result;
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
        // The nodes just written are unreferenced now: garbage for gc, harmless meanwhile.
        await sleep(backoffDelay(attempt, SWAP_BACKOFF), options.signal);
      }
      this.ctx.onUpdate?.({ storageIndex: siHex, attempts: this.ctx.maxAttempts, committed: false });
      throw new TransientError(`directory ${siHex}: gave up after ${this.ctx.maxAttempts} conflicting updates`);
    });
  }
}

function sameMetadata(a: EntryMetadata, b: EntryMetadata): boolean {
  return (
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.atimeMs === b.atimeMs &&
    !!a.noWrite === !!b.noWrite &&
    !!a.executable === !!b.executable
  );
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
