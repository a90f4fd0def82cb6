import { createHash } from 'node:crypto';
import { parseDirectoryCap, type Cap } from '../cap/index.js';
import { NotFoundError } from '../errors.js';
import type { Directory, Tree } from '../tree/api.js';
import type { CommitCheck, EntryCondition } from './api.js';

/**
 * Building and evaluating a change's CommitCheck (docs/spec/events.md,
 * Intents). A condition names the entry by a digest of its cap's read-only
 * form, so the same entry compares equal whether it is looked up through a
 * write cap (a child directory's write cap) or, at restart, through the
 * parent's read cap (the child's read cap); the cap itself is not kept.
 */

export function entryDigest(cap: Cap): string {
  return createHash('sha256').update(cap.readonly().toString()).digest('hex');
}

/** `name` in `dir` holds the entry `cap` (with `ctimeMs`, when given: the very entry this change wrote). */
export function holds(dir: Directory, name: string, cap: Cap, ctimeMs?: number): EntryCondition {
  const condition: EntryCondition = { dir: dir.cap.readonly().toString(), name, holds: true, entry: entryDigest(cap) };
  if (ctimeMs !== undefined) condition.ctimeMs = ctimeMs;
  return condition;
}

/** `name` in `dir` no longer holds the entry `cap` (removed, moved away, or replaced). */
export function lacks(dir: Directory, name: string, cap: Cap): EntryCondition {
  return { dir: dir.cap.readonly().toString(), name, holds: false, entry: entryDigest(cap) };
}

/**
 * Whether every condition is true now, read through `tree` (the slot store
 * the change was made in). A directory that is gone (sealed by rmdir) holds
 * nothing. Store failures propagate: the caller keeps the intent and asks
 * again later.
 */
export async function isCommitted(tree: Tree, check: CommitCheck): Promise<boolean> {
  for (const condition of check) {
    const cap = parseDirectoryCap(condition.dir);
    let found = false;
    try {
      const entry = await tree.directory(cap).lookup(condition.name);
      found =
        entry !== undefined &&
        entryDigest(entry.cap) === condition.entry &&
        (condition.ctimeMs === undefined || entry.metadata.ctimeMs === condition.ctimeMs);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    if (found !== condition.holds) return false;
  }
  return true;
}
