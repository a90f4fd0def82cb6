import type { DirectoryCap } from '../cap/index.js';
import { KeyedMutex } from '../util/keyed-mutex.js';

/**
 * Files being written, as the writing user's sessions must see them.
 *
 * Uploads are close-on-write: nothing is linked into the directory until
 * CLOSE. But a client that creates a file expects to stat it and see it in
 * its directory listing at once (sshfs stats right after create; `ls` while a
 * copy runs), so every open write handle registers here, keyed by user,
 * directory (its storage index, the same for its write and read cap) and
 * name. stat and readdir of that user consult the overlay first; other users
 * see only committed entries. Memory is bounded by the open write handles.
 *
 * The overlay also serialises what changes a user's name across sessions
 * (`exclusive`): an upload's commit, and a rename, remove, setstat or
 * OPEN of that name in another session. A client with several connections
 * (sshfs -o max_conns) sends CLOSE on one and the rename of the same file
 * on another without waiting; the rename must then move the committed file
 * (or the upload, before its commit starts), never an upload whose commit
 * already chose its name.
 */
export interface OverlayItem {
  readonly size: number;
  readonly mtimeMs: number;
}

function dirKey(user: string, dir: DirectoryCap): string {
  return `${user}\0${dir.storageIndexHex}`;
}

/** A name in a directory, as `exclusive` locks it. */
export interface NameRef {
  readonly dir: DirectoryCap;
  readonly name: string;
}

export class UploadOverlay<T extends OverlayItem = OverlayItem> {
  /** dirKey → name → open handles on that name (most recently registered last). */
  readonly #dirs = new Map<string, Map<string, T[]>>();
  readonly #names = new KeyedMutex();
  #removals = 0;

  /**
   * How many handles have left the overlay (each after its commit, or
   * abandoned): an entry looked up while this stayed the same was looked up
   * with every upload that was then committing still here to be seen.
   */
  get removals(): number {
    return this.#removals;
  }

  /**
   * Runs fn while no other `exclusive` call of `user` holds any of `names`
   * (taken in one sorted order, so two callers never wait on each other).
   */
  async exclusive<R>(user: string, names: readonly NameRef[], fn: () => Promise<R>): Promise<R> {
    const keys = [...new Set(names.map((n) => `${dirKey(user, n.dir)}\0${n.name}`))].sort();
    const under = (rest: readonly string[]): Promise<R> => {
      const [first, ...others] = rest;
      return first === undefined ? fn() : this.#names.run(first, () => under(others));
    };
    return under(keys);
  }

  add(user: string, dir: DirectoryCap, name: string, item: T): void {
    const key = dirKey(user, dir);
    let names = this.#dirs.get(key);
    if (names === undefined) this.#dirs.set(key, (names = new Map()));
    const items = names.get(name);
    if (items === undefined) names.set(name, [item]);
    else items.push(item);
  }

  remove(user: string, dir: DirectoryCap, name: string, item: T): void {
    const key = dirKey(user, dir);
    const names = this.#dirs.get(key);
    const items = names?.get(name);
    if (names === undefined || items === undefined) return;
    const i = items.indexOf(item);
    if (i !== -1) {
      items.splice(i, 1);
      this.#removals++;
    }
    if (items.length === 0) names.delete(name);
    if (names.size === 0) this.#dirs.delete(key);
  }

  /** The open handles on a name, oldest first (empty if none). */
  handles(user: string, dir: DirectoryCap, name: string): readonly T[] {
    return this.#dirs.get(dirKey(user, dir))?.get(name) ?? [];
  }

  /** What stat shows for a name being written: the most recently opened handle. */
  lookup(user: string, dir: DirectoryCap, name: string): T | undefined {
    const items = this.handles(user, dir, name);
    return items[items.length - 1];
  }

  /** Snapshot of the names being written in a directory, for readdir. */
  names(user: string, dir: DirectoryCap): Map<string, T> {
    const out = new Map<string, T>();
    for (const [name, items] of this.#dirs.get(dirKey(user, dir)) ?? []) {
      const latest = items.at(-1);
      if (latest !== undefined) out.set(name, latest);
    }
    return out;
  }

  hasAny(user: string, dir: DirectoryCap): boolean {
    return this.#dirs.has(dirKey(user, dir));
  }
}
