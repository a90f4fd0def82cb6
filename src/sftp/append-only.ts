import { isDirectoryCap } from '../cap/index.js';
import type { Directory } from '../tree/index.js';
import type { SessionContext } from './session-context.js';
import { pathOf } from './dispatch.js';
import { extensionFields } from './extensions.js';
import { OPEN_FLAGS, STATUS } from './protocol/constants.js';
import type { Request } from './protocol/requests.js';
import { SftpStatusError } from './status.js';
import type { EntryLocation, Location } from './user-tree.js';

/**
 * The `append-only` account option (src/auth/accounts-file.ts): a backup
 * target a compromised client cannot wipe. Within one SFTP session the
 * client may create files, directories and links, and change, rename or
 * remove what it created in this same session (restic writes a temporary
 * name and renames it, and removes its own lock files); it may not
 * overwrite, truncate, rename or remove anything that existed before the
 * session began. Another session of the same account, even one open at the
 * same time, sees this session's files as existing before it.
 *
 * The rules, per request the dispatch table marks as writing (checked in
 * SftpSession before the handler runs, in this one place):
 * - OPEN for writing: refused on a name that exists (a committed entry, or
 *   an upload of the same account still open) and was not created in this
 *   session, whatever the flags: O_TRUNC would cut it, and a write without
 *   O_TRUNC, O_APPEND included, changes a file that was there. A new name is
 *   allowed and becomes this session's.
 * - WRITE, FSYNC, CLOSE, FSETSTAT on a write handle: allowed, the handle was
 *   admitted at OPEN.
 * - SETSTAT / FSETSTAT with a size: refused on what existed before. Mode and
 *   times are allowed on anything (rsync and rclone set times on files they
 *   find unchanged; a mode only sets or clears capstan's no-write flag,
 *   which this policy does not rely on): they change no content.
 * - REMOVE, RMDIR, RENAME and posix-rename (the old name), and posix-rename
 *   over an existing target: refused unless the name was created in this
 *   session. A rename moves "created" from the old name to the new one.
 * - MKDIR, SYMLINK, hardlink: only make new names (the handlers refuse an
 *   existing one), which become this session's; everything inside a
 *   directory made in this session counts as this session's too.
 * A request for a name that does not exist runs on, so the client gets the
 * handler's own answer (NO_SUCH_FILE), not PERMISSION_DENIED.
 *
 * Names are remembered by directory identity (the storage index of the
 * directory cap) and entry name, never by path: a symbolic link on the way,
 * a /uri/ path or a rename of a parent reaches the same key.
 *
 * Limits, stated plainly:
 * - The check runs before the handler, not inside its directory update: a
 *   name another session creates in the instant between them can be
 *   replaced by this session. Only a file that is itself brand new can be
 *   lost so, never one that existed when this session checked.
 * - A directory made in this session lends "created" to everything in it,
 *   also to what another session puts there while this one runs.
 * - At most MAX_REMEMBERED names and as many directories are remembered;
 *   beyond that the oldest are forgotten, which only ever refuses more
 *   (a forgotten name counts as having existed before).
 */

/** Names (and directories) one session remembers as its own: ~150 bytes each, so ~15 MB at most. */
export const MAX_REMEMBERED = 100_000;

const denied = (what: string): SftpStatusError =>
  new SftpStatusError(STATUS.PERMISSION_DENIED, `append-only account: ${what} what existed before this session`);

/** Bounded insertion-ordered set: adding past the bound forgets the oldest. */
export class RecentSet {
  readonly #items = new Set<string>();
  constructor(private readonly max: number) {}

  has(key: string): boolean {
    return this.#items.has(key);
  }
  add(key: string): void {
    this.#items.delete(key);
    this.#items.add(key);
    if (this.#items.size > this.max) {
      const oldest = this.#items.values().next();
      if (oldest.done !== true) this.#items.delete(oldest.value);
    }
  }
  delete(key: string): void {
    this.#items.delete(key);
  }
}

function dirKey(dir: Directory): string {
  return dir.cap.storageIndexHex;
}

function nameKey(loc: EntryLocation): string {
  return `${dirKey(loc.dir)}/${loc.name}`;
}

/** Runs after the handler succeeded: records what the request created, moved or removed. */
export type Settle = () => Promise<void>;

export class AppendOnlyPolicy {
  readonly #names: RecentSet;
  readonly #dirs: RecentSet;

  constructor(maxRemembered = MAX_REMEMBERED) {
    this.#names = new RecentSet(maxRemembered);
    this.#dirs = new RecentSet(maxRemembered);
  }

  /**
   * Refuses (throws SftpStatusError PERMISSION_DENIED) a writing request
   * that would change what existed before this session; otherwise returns
   * what to record once the handler has succeeded. Errors of the lookups
   * (a missing parent directory, say) propagate as the handler's would.
   */
  async admit(request: Request, ctx: SessionContext): Promise<Settle | undefined> {
    const { view } = ctx;
    switch (request.type) {
      case 'open': {
        const create = (request.pflags & OPEN_FLAGS.CREAT) !== 0;
        const exclusive = (request.pflags & OPEN_FLAGS.EXCL) !== 0;
        // The location openWrite will write: it follows a last link unless O_CREAT|O_EXCL.
        const loc = await view.locate(pathOf(request.path), !(create && exclusive));
        if (loc.kind === 'base') return undefined;
        if (await this.#exists(loc, ctx)) {
          if (!this.#ours(loc)) throw denied('cannot write to');
          return undefined;
        }
        return this.#remembering(loc);
      }
      case 'setstat': {
        if (request.attrs.size === undefined) return undefined;
        const loc = await view.locate(pathOf(request.path), true);
        if (loc.kind !== 'base' && (await this.#exists(loc, ctx)) && !this.#ours(loc)) throw denied('cannot truncate or extend');
        return undefined;
      }
      case 'remove':
      case 'rmdir': {
        const loc = await view.locateEntry(pathOf(request.path));
        if (!(await this.#exists(loc, ctx))) return undefined;
        if (!this.#ours(loc)) throw denied('cannot remove');
        return async () => this.#names.delete(nameKey(loc));
      }
      case 'mkdir': {
        const loc = await view.locate(pathOf(request.path));
        if (loc.kind === 'base') return undefined;
        return async () => {
          this.#names.add(nameKey(loc));
          const entry = await loc.dir.lookup(loc.name);
          if (entry !== undefined && isDirectoryCap(entry.cap)) this.#dirs.add(entry.cap.storageIndexHex);
        };
      }
      case 'symlink':
        return this.#remembering(await view.locateEntry(pathOf(request.link)));
      case 'rename':
        return this.#rename(pathOf(request.from), pathOf(request.to), false, ctx);
      case 'extended':
        if (request.name === 'posix-rename@openssh.com') {
          const [from, to] = extensionFields(request.data, ['text', 'text'] as const);
          return this.#rename(from, to, true, ctx);
        }
        if (request.name === 'hardlink@openssh.com') {
          const [, to] = extensionFields(request.data, ['text', 'text'] as const);
          return this.#remembering(await view.locateEntry(to));
        }
        return undefined; // fsync: a handle admitted at OPEN
      default:
        // write, fsetstat: on handles. A write handle was admitted at OPEN; FSETSTAT with a
        // size on any other handle is refused by its handler, and mode and times are allowed.
        return undefined;
    }
  }

  async #rename(fromRaw: string, toRaw: string, overwrite: boolean, ctx: SessionContext): Promise<Settle | undefined> {
    const from = await ctx.view.locateEntry(fromRaw);
    const to = await ctx.view.locateEntry(toRaw);
    if (!(await this.#exists(from, ctx))) return undefined;
    if (!this.#ours(from)) throw denied('cannot rename');
    // A plain RENAME never replaces (its handler answers FAILURE); posix-rename would.
    if (overwrite && (await this.#exists(to, ctx)) && !this.#ours(to)) throw denied('cannot replace');
    return async () => {
      this.#names.delete(nameKey(from));
      this.#names.add(nameKey(to));
    };
  }

  #remembering(loc: EntryLocation): Settle {
    return async () => this.#names.add(nameKey(loc));
  }

  /** Created in this session: the name itself, or anything in a directory made in this session. */
  #ours(loc: EntryLocation): boolean {
    return this.#names.has(nameKey(loc)) || this.#dirs.has(dirKey(loc.dir));
  }

  async #exists(loc: Location, ctx: SessionContext): Promise<boolean> {
    if (loc.kind === 'base') return true;
    return ctx.view.uploads(loc).length > 0 || (await loc.dir.lookup(loc.name)) !== undefined;
  }
}
