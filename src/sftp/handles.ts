import type { DirectoryCap, FileCap } from '../cap/index.js';
import type { DirEntry, FileReader } from '../tree/index.js';
import { LIMITS, STATUS } from './protocol/constants.js';
import { SftpStatusError } from './status.js';
import type { ParsedPath } from './paths.js';
import type { WriteHandle } from './write-handle.js';
import type { SftpAttrs } from './attrs.js';
import type { OverlayItem } from './overlay.js';

/** Where a name lives: its directory and the name in it (absent for a /uri file cap opened directly). */
export interface NamePlace {
  dir: DirectoryCap;
  name: string;
}

/** A file opened for reading only: an immutable file, so reads need no ordering. */
export class ReadHandle {
  readonly kind = 'read' as const;
  /**
   * `attrs`: what the file looked like at OPEN, for FSTAT (the name may since point elsewhere);
   * `cap`: the immutable file read (copy-data relinks it); `place`: the name it was opened by.
   */
  constructor(
    readonly reader: FileReader,
    readonly path: ParsedPath,
    readonly attrs: SftpAttrs,
    readonly cap: FileCap,
    readonly place: NamePlace | undefined,
  ) {}
}

/** One entry as READDIR sends it. */
export interface DirListing {
  filename: string;
  longname: string;
  attrs: SftpAttrs;
}

/** What a listing line is made from: a dot entry, a stored entry, an upload, or both (upload wins). */
export type ListedItem =
  | { name: '.' | '..' }
  | { name: string; entry: DirEntry; upload?: OverlayItem | undefined }
  | { name: string; entry?: undefined; upload: OverlayItem };

/**
 * An open directory: a cursor over the directory's streamed listing, then
 * the names being written there by this user (the overlay) that the
 * listing did not contain. Memory: one batch plus the overlay snapshot.
 */
export class DirHandle {
  readonly kind = 'dir' as const;
  #pendingDots = true;
  #done = false;

  constructor(
    readonly path: ParsedPath,
    readonly attrs: SftpAttrs,
    private readonly entries: AsyncIterator<DirEntry>,
    /** Names being uploaded here, taken out as the listing meets them. */
    private readonly uploads: Map<string, OverlayItem>,
    private readonly describe: (item: ListedItem) => DirListing,
  ) {}

  /** Up to `max` entries; an empty array means the end (EOF). */
  async next(max: number): Promise<DirListing[]> {
    const out: DirListing[] = [];
    if (this.#pendingDots) {
      this.#pendingDots = false;
      out.push(this.describe({ name: '.' }), this.describe({ name: '..' }));
    }
    while (!this.#done && out.length < max) {
      const step = await this.entries.next();
      if (step.done === true) {
        this.#done = true;
        break;
      }
      const entry = step.value;
      const upload = this.uploads.get(entry.name);
      if (upload !== undefined) this.uploads.delete(entry.name);
      out.push(this.describe({ name: entry.name, entry, upload }));
    }
    if (this.#done) {
      for (const [name, upload] of this.uploads) {
        if (out.length >= max) break;
        this.uploads.delete(name);
        out.push(this.describe({ name, upload }));
      }
    }
    return out;
  }

  close(): void {
    this.#done = true;
    this.uploads.clear();
    void this.entries.return?.()?.catch(() => {});
  }
}

export type Handle = ReadHandle | WriteHandle | DirHandle;

/**
 * A session's open handles. Handles on the wire are 4-byte counters, never
 * reused within a session, so a stale handle from a closed file cannot
 * reach a newer one. At most LIMITS.maxOpenHandles at once (announced by
 * limits@openssh.com); one more is FAILURE "too many open handles".
 */
export class HandleTable {
  readonly #open = new Map<number, Handle>();
  #next = 1;

  constructor(readonly max: number = LIMITS.maxOpenHandles) {}

  get size(): number {
    return this.#open.size;
  }

  /** Throws if one more handle would pass the bound; checked before opening anything. */
  ensureRoom(): void {
    if (this.#open.size >= this.max) throw new SftpStatusError(STATUS.FAILURE, 'too many open handles');
  }

  add(handle: Handle): Buffer {
    this.ensureRoom();
    const id = this.#next;
    this.#next = (this.#next + 1) >>> 0 || 1;
    this.#open.set(id, handle);
    const wire = Buffer.allocUnsafe(4);
    wire.writeUInt32BE(id, 0);
    return wire;
  }

  get(wire: Buffer): Handle {
    const handle = wire.length === 4 ? this.#open.get(wire.readUInt32BE(0)) : undefined;
    if (handle === undefined) throw new SftpStatusError(STATUS.FAILURE, 'invalid handle');
    return handle;
  }

  delete(wire: Buffer): void {
    if (wire.length === 4) this.#open.delete(wire.readUInt32BE(0));
  }

  /** Removes and returns every handle (session end). */
  drain(): Handle[] {
    const all = [...this.#open.values()];
    this.#open.clear();
    return all;
  }
}
