import { type DirectoryReadCap, DirectoryWriteCap, type DirectoryCap } from '../cap/index.js';
import { InvalidInputError, NotFoundError, throwIfAborted, type AbortOptions } from '../errors.js';
import type { SlotHistory, SlotStore } from '../store/slots/slot-store.js';
import type { Directory, Snapshot } from './api.js';

/**
 * Snapshots of a directory tree (docs/spec/snapshots.md, Operations): a
 * pin in the slot store's history and a `DIR-SNAP` cap that reads the tree
 * at it. O(1): nothing under the directory is read or copied.
 */

function historyOf(slots: SlotStore): SlotHistory {
  if (slots.history === undefined) throw new InvalidInputError('this slot store keeps no history, so it cannot take snapshots');
  return slots.history;
}

export const HOUR_MS = 3_600_000;

/**
 * Scheduled snapshots are taken at the start of an hour exactly, and only
 * they are: a snapshot taken by hand at such a time is recorded 1 ms later,
 * so retention (which removes scheduled snapshots only) can tell them apart
 * (docs/spec/snapshots.md, Scheduled snapshots).
 */
export function isScheduledTime(ms: number): boolean {
  return ms % HOUR_MS === 0;
}

/** Takes a snapshot of the directory `cap` (a write cap: only its writers may make the store keep its past). */
export async function createSnapshot(
  slots: SlotStore,
  dir: Directory,
  now: number,
  options: AbortOptions & { scheduledAt?: number | undefined } = {},
): Promise<Snapshot> {
  let createdMs = now;
  if (options.scheduledAt !== undefined) {
    if (!isScheduledTime(options.scheduledAt)) throw new InvalidInputError('a scheduled snapshot is taken at the start of an hour');
    createdMs = options.scheduledAt;
  } else if (isScheduledTime(createdMs)) {
    createdMs++;
  }
  const cap = dir.cap;
  if (!(cap instanceof DirectoryWriteCap)) throw new InvalidInputError('a snapshot is taken with the directory’s write cap');
  // The directory must exist and not be removed: the count reads and verifies its current version.
  await dir.count(options);
  const pin = await historyOf(slots).pin(cap.storageIndex, createdMs, options);
  return { cap: cap.readonly().at(pin.epoch), epoch: pin.epoch, createdMs: pin.createdMs };
}

/** The snapshots of the directory `cap` (any cap that reads it), oldest first. */
export async function listSnapshots(slots: SlotStore, cap: DirectoryCap, options: AbortOptions = {}): Promise<Snapshot[]> {
  const out: Snapshot[] = [];
  const live = cap.readonly().at(undefined);
  for await (const pin of historyOf(slots).pins(cap.storageIndex, options)) {
    throwIfAborted(options.signal);
    out.push({ cap: live.at(pin.epoch), epoch: pin.epoch, createdMs: pin.createdMs });
  }
  return out;
}

/** Removes the snapshot a `DIR-SNAP` cap names; NotFoundError if there is none (any more). */
export async function removeSnapshot(slots: SlotStore, cap: DirectoryReadCap, options: AbortOptions = {}): Promise<void> {
  if (cap.epoch === undefined) throw new InvalidInputError('not a snapshot cap');
  if (!(await historyOf(slots).unpin(cap.storageIndex, cap.epoch, options))) throw new NotFoundError('no such snapshot');
}

/**
 * The names snapshots go by under `/.snapshots/`: the UTC second they were
 * taken (`2026-12-02T03:00:00Z`); a second taken in the same second gets
 * `_2`, a third `_3`, in epoch order.
 */
export function snapshotNames(snapshots: readonly Snapshot[]): { name: string; snapshot: Snapshot }[] {
  const seen = new Map<string, number>();
  return snapshots.map((snapshot) => {
    const base = `${new Date(snapshot.createdMs).toISOString().slice(0, 19)}Z`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { name: n === 1 ? base : `${base}_${n}`, snapshot };
  });
}
