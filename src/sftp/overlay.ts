import type { DirectoryCap } from '../cap/index.js';

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
 */
export interface OverlayItem {
  readonly size: number;
  readonly mtimeMs: number;
}

function dirKey(user: string, dir: DirectoryCap): string {
  return `${user}\0${Buffer.from(dir.storageIndex).toString('hex')}`;
}

export class UploadOverlay<T extends OverlayItem = OverlayItem> {
  /** dirKey → name → open handles on that name (most recently registered last). */
  readonly #dirs = new Map<string, Map<string, T[]>>();

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
    if (i !== -1) items.splice(i, 1);
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
