import { DirectoryReadCap, type Cap, type DirectoryCap, type DirectoryWriteCap } from '../cap/index.js';
import { PermissionError } from '../errors.js';
import { snapshotNames, type DirEntry, type Directory, type DirectoryNodeView, type Tree } from '../tree/index.js';
import type { ParsedPath } from './paths.js';

/**
 * `/.snapshots/` in a writable account root (docs/operations.md, Snapshots):
 * a read-only folder listing the snapshots of the account's root by the UTC
 * second they were taken, each the whole tree as it was. Hidden from the
 * root's listing, so `rm -r /` and `rsync --delete` never meet it; reached
 * by its path. It shadows a real entry of that name in the root.
 */
export const SNAPSHOTS_DIR = '.snapshots';

/**
 * The cap that stands for the folder itself in a location: a read cap no
 * directory has (all-zero keys), so nothing can be written through it and
 * a lookup in it finds no slot. Only SnapshotsFolder lists it.
 */
export const SNAPSHOTS_FOLDER_CAP = new DirectoryReadCap(new Uint8Array(32), new Uint8Array(32));

export function isSnapshotsFolder(cap: Cap): boolean {
  return cap === SNAPSHOTS_FOLDER_CAP;
}

/** Where a `/.snapshots/...` path starts: the folder, or the snapshot it names with the names below it. */
export async function snapshotPath(tree: Tree, root: DirectoryCap, requested: ParsedPath): Promise<ParsedPath> {
  const [, name, ...rest] = requested.components;
  if (name !== undefined) {
    const found = snapshotNames(await tree.listSnapshots(root)).find((n) => n.name === name);
    if (found !== undefined) {
      return { uriCap: found.snapshot.cap, components: rest, canonical: requested.canonical, shownBase: [SNAPSHOTS_DIR, name] };
    }
  }
  // The folder itself, or a name it does not hold: looked up in the folder's cap, which finds nothing and writes nothing.
  return {
    uriCap: SNAPSHOTS_FOLDER_CAP,
    components: requested.components.slice(1),
    canonical: requested.canonical,
    shownBase: [SNAPSHOTS_DIR],
  };
}

/** The folder as a Directory: lists the snapshots; every change is PermissionError. */
export class SnapshotsFolder implements Directory {
  readonly cap = SNAPSHOTS_FOLDER_CAP;
  readonly writable = false;

  constructor(
    private readonly tree: Tree,
    private readonly root: DirectoryCap,
  ) {}

  async *list(): AsyncIterable<DirEntry> {
    for (const { name, snapshot } of snapshotNames(await this.tree.listSnapshots(this.root))) {
      yield { name, cap: snapshot.cap, metadata: { size: 0, mtimeMs: snapshot.createdMs, ctimeMs: snapshot.createdMs } };
    }
  }

  async lookup(name: string): Promise<DirEntry | undefined> {
    for await (const entry of this.list()) if (entry.name === name) return entry;
    return undefined;
  }

  /** The folder has no nodes of its own. */
  async *nodes(): AsyncIterable<DirectoryNodeView> {}

  async count(): Promise<number> {
    return (await this.tree.listSnapshots(this.root)).length;
  }

  link(): Promise<DirEntry | undefined> {
    return refuse();
  }
  swapEntry(): Promise<boolean> {
    return refuse();
  }
  seal(): Promise<boolean> {
    return refuse();
  }
  share(): Promise<void> {
    return refuse();
  }
  unseal(): Promise<void> {
    return refuse();
  }
  unlink(): Promise<DirEntry> {
    return refuse();
  }
  setMetadata(): Promise<DirEntry> {
    return refuse();
  }
  rename(): Promise<DirEntry | undefined> {
    return refuse();
  }
  mkdir(): Promise<DirectoryWriteCap> {
    return refuse();
  }
}

async function refuse(): Promise<never> {
  throw new PermissionError('snapshots are read-only');
}
