import type { Cap, DirectoryCap, DirectoryWriteCap } from '../../cap/index.js';
import { XCHACHA_NONCE_BYTES } from '../../crypto/index.js';
import {
  AbortError,
  AlreadyExistsError,
  ConflictError,
  NotFoundError,
  PermissionError,
  TransientError,
  throwIfAborted,
  type AbortOptions,
} from '../../errors.js';
import type { DirEntry, Directory, DirectoryNodeView, EntryMetadata, LinkOptions } from '../api.js';
import { nameBytes, checkName } from '../names.js';
import { loadNode, type DirectoryContext } from './context.js';
import { Draft } from './draft.js';
import { checkMetadata, makeEntry, patchMetadata, storeCap, viewEntry } from './entries.js';
import { DirectoryKeys } from './keys.js';
import { nodeCount, type StoredEntry } from './node-format.js';
import { encodeSlotRecord, verifySlotRecord, type SlotVersion } from './slot-record.js';
import { walkAllNodes, walkBuckets } from './walk.js';

/** Longest pause between compare-and-swap attempts; the pause is random below a doubling cap. */
const MAX_BACKOFF_MS = 200;

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
    this.keys = new DirectoryKeys(cap);
    this.writable = this.keys.writer !== undefined;
  }

  /** The storage index in hex (public; names the directory in errors and logs). */
  get storageIndexHex(): string {
    return this.keys.siHex;
  }

  private async readVersion(options: AbortOptions): Promise<SlotVersion> {
    throwIfAborted(options.signal);
    const entry = await this.ctx.slots.get(this.keys.storageIndex, options);
    if (!entry) throw new NotFoundError(`directory ${this.keys.siHex} has no slot`);
    const { verifiedSlots } = this.ctx;
    const known = verifiedSlots.get(this.keys.siHex, entry);
    if (known) return known;
    const version = verifySlotRecord(this.keys.publicKey, this.keys.siHex, entry);
    verifiedSlots.set(this.keys.siHex, entry.record, version);
    return version;
  }

  async *list(options: AbortOptions = {}): AsyncIterable<DirEntry> {
    const version = await this.readVersion(options);
    for await (const { entries, nodeId } of walkBuckets(this.ctx, this.keys, version.root, options)) {
      for (const entry of entries) yield viewEntry(this.keys, entry, nodeId);
    }
  }

  async *nodes(options: AbortOptions = {}): AsyncIterable<DirectoryNodeView> {
    const version = await this.readVersion(options);
    for await (const { entries, nodeId } of walkAllNodes(this.ctx, this.keys, version.root, options)) {
      yield { address: nodeId, entries: entries.map((entry) => viewEntry(this.keys, entry, nodeId)) };
    }
  }

  async lookup(name: string, options: AbortOptions = {}): Promise<DirEntry | undefined> {
    const utf8 = nameBytes(checkName(name));
    const version = await this.readVersion(options);
    const found = await new Draft(this.ctx, this.keys, version.root, options).get(utf8);
    return found && viewEntry(this.keys, found, version.root.toString());
  }

  async count(options: AbortOptions = {}): Promise<number> {
    const version = await this.readVersion(options);
    return nodeCount(await loadNode(this.ctx, this.keys, version.root, undefined, options));
  }

  async link(name: string, cap: Cap, metadata: EntryMetadata, options: LinkOptions = {}): Promise<void> {
    const checked = checkName(name);
    const meta = checkMetadata(metadata);
    this.requireWriter();
    const entry = makeEntry(checked, storeCap(this.keys, cap, this.nonce), meta);
    await this.mutate(options, async (draft) => {
      const existing = await draft.get(entry.nameUtf8);
      if (existing) refuseReplace(existing, options.overwrite);
      await draft.set(entry);
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

  /**
   * Removes `name` only while it still holds the cap `expected` (compared by
   * the string this view would hand out); answers whether it did. For
   * moveEntry: the second half of a move must not remove an entry someone
   * replaced in between.
   */
  async unlinkIfCap(name: string, expected: Cap, options: AbortOptions = {}): Promise<boolean> {
    const utf8 = nameBytes(checkName(name));
    this.requireWriter();
    const want = expected.toString();
    return this.mutate(options, async (draft) => {
      const entry = await draft.get(utf8);
      if (!entry || viewEntry(this.keys, entry, this.keys.siHex).cap.toString() !== want) return false;
      await draft.delete(utf8);
      return true;
    });
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

  async rename(from: string, to: string, options: LinkOptions = {}): Promise<void> {
    const fromName = checkName(from);
    const toName = checkName(to);
    this.requireWriter();
    const fromUtf8 = nameBytes(fromName);
    const toUtf8 = nameBytes(toName);
    await this.mutate(options, async (draft) => {
      const entry = await draft.get(fromUtf8);
      if (!entry) throw new NotFoundError('no such entry');
      if (fromName === toName) return;
      const target = await draft.get(toUtf8);
      if (target) refuseReplace(target, options.overwrite);
      await draft.delete(fromUtf8);
      await draft.set({ ...entry, name: toName, nameUtf8: toUtf8 });
    });
  }

  async mkdir(name: string, metadata: Partial<EntryMetadata> = {}, options: AbortOptions = {}): Promise<DirectoryWriteCap> {
    const checked = checkName(name);
    this.requireWriter();
    const now = Date.now();
    const meta = checkMetadata({ size: 0, mtimeMs: now, ctimeMs: now, ...definedOnly(metadata) });
    // Checked first only to avoid making an orphan in the common case; the
    // link below is what decides (a racing writer may take the name in
    // between, and then the new child is an unreachable, harmless orphan).
    if (await this.lookup(checked, options)) throw new AlreadyExistsError('entry exists');
    const child = await this.ctx.createDirectory(options);
    await this.link(checked, child, meta, { ...options, overwrite: false });
    return child;
  }

  private readonly nonce = (): Uint8Array => this.ctx.randomBytes(XCHACHA_NONCE_BYTES);

  private requireWriter(): NonNullable<DirectoryKeys['writer']> {
    if (!this.keys.writer) throw new PermissionError('directory is read-only');
    return this.keys.writer;
  }

  /**
   * Read the slot, edit, write the new nodes, compare-and-swap seq → seq+1;
   * on a lost swap start over from the new version. `edit` may run several
   * times and must only touch the draft. Mutations of one directory through
   * this Tree queue behind each other (they would only conflict); other
   * Trees and gateways are kept honest by the swap alone.
   */
  private async mutate<T>(options: AbortOptions, edit: (draft: Draft) => Promise<T>): Promise<T> {
    const writer = this.requireWriter();
    const { storageIndex, siHex } = this.keys;
    return this.ctx.locks.run(siHex, async () => {
      for (let attempt = 0; attempt < this.ctx.maxAttempts; attempt++) {
        const version = await this.readVersion(options);
        const draft = new Draft(this.ctx, this.keys, version.root, options);
        const result = await edit(draft);
        if (!draft.changed) return result;
        const root = await draft.commit();
        const seq = version.seq + 1n;
        const record = encodeSlotRecord(writer.signingKey, storageIndex, { seq, root });
        try {
          await this.ctx.slots.compareAndSwap(storageIndex, version.seq, { seq, record }, options);
          this.ctx.verifiedSlots.set(siHex, record, { seq, root });
          return result;
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
        // The nodes just written are unreferenced now: garbage for gc, harmless meanwhile.
        await pause(Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** attempt), options.signal);
      }
      throw new TransientError(`directory ${siHex}: gave up after ${this.ctx.maxAttempts} conflicting updates`);
    });
  }
}

function refuseReplace(existing: StoredEntry, overwrite: boolean | undefined): void {
  if (!overwrite) throw new AlreadyExistsError('entry exists');
  if (existing.metadata.noWrite) throw new PermissionError('entry is read-only');
}

function sameMetadata(a: EntryMetadata, b: EntryMetadata): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.atimeMs === b.atimeMs && !!a.noWrite === !!b.noWrite;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
