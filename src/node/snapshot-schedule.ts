import { DirectoryWriteCap, parseCap } from '../cap/index.js';
import type { AccountsFile } from '../auth/accounts-watcher.js';
import { recordAround, type EventRecorder } from '../events/api.js';
import { TAG, taggedHash } from '../crypto/index.js';
import { ConflictError, isCapstanError, type AbortOptions } from '../errors.js';
import type { Logger } from '../log.js';
import type { SlotStore } from '../store/slots/slot-store.js';
import { HOUR_MS, isScheduledTime, snapshotNames, type Snapshot, type Tree } from '../tree/index.js';

/**
 * Scheduled snapshots with retention ([snapshots] schedule, keep_*;
 * docs/spec/snapshots.md, Scheduled snapshots): at the start of every hour
 * (or day) one gateway of those sharing the slot store takes a snapshot of
 * every account root, then removes the scheduled snapshots the retention
 * policy no longer keeps. Manual snapshots (`capstan snapshot create`) are
 * never removed by it.
 *
 * One gateway: the first to move the schedule slot (a compare-and-swap of
 * a record naming the period) to the new period takes it; the others see
 * it taken. A gateway that dies in between leaves that period's remaining
 * roots without a snapshot (logged by the next period's taker as nothing:
 * the gap shows in the listing).
 */

export type ScheduleEvery = 'off' | 'hourly' | 'daily';

export interface Retention {
  hourly: number;
  daily: number;
  weekly: number;
}

export interface SnapshotScheduleOptions {
  tree: Tree;
  slots: SlotStore;
  every: Exclude<ScheduleEvery, 'off'>;
  keep: Retention;
  /** The directories to snapshot, by write cap (account roots); asked at each period. */
  roots(): Iterable<DirectoryWriteCap>;
  logger?: Logger | undefined;
  now?: (() => number) | undefined;
  /** Told of each snapshot taken or removed, once it is durable (events). Must not throw. */
  onChange?: ((change: SnapshotChange) => Promise<void>) | undefined;
}

export interface SnapshotChange {
  operation: 'snapshot-create' | 'snapshot-remove';
  root: DirectoryWriteCap;
  /** The snapshot's name under /.snapshots/. */
  name: string;
}

export interface PeriodResult {
  period: number;
  taken: number;
  removed: number;
  failed: number;
}

const DAY_MS = 24 * HOUR_MS;
/** How often the clock is looked at: a period starts at most this late. */
const TICK_MS = 30_000;
const RECORD_VERSION = 1;

export class SnapshotSchedule {
  readonly #o: SnapshotScheduleOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  /** The last period this gateway took or saw taken: "taken elsewhere" is logged once per period. */
  #lastPeriod: number | undefined;

  constructor(options: SnapshotScheduleOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    const tick = () => {
      this.#running ??= this.runDue()
        .catch((err: unknown) => this.#o.logger?.error({ err }, 'scheduled snapshots failed'))
        .finally(() => (this.#running = undefined));
    };
    tick();
    this.#timer = setInterval(tick, TICK_MS);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** The current period, taken here if no gateway has taken it yet; undefined if it was. */
  async runDue(options: AbortOptions = {}): Promise<PeriodResult | undefined> {
    const size = this.#o.every === 'hourly' ? HOUR_MS : DAY_MS;
    const period = Math.floor(this.#now() / size) * size;
    if (!(await this.#claim(period, options))) {
      if (this.#lastPeriod !== period) {
        this.#lastPeriod = period;
        this.#o.logger?.info(
          { event: 'snapshots_taken_elsewhere', period: new Date(period).toISOString() },
          'scheduled snapshots: another gateway took this period',
        );
      }
      return undefined;
    }
    this.#lastPeriod = period;
    const result: PeriodResult = { period, taken: 0, removed: 0, failed: 0 };
    const seen = new Set<string>();
    for (const root of this.#o.roots()) {
      const si = root.storageIndexHex;
      if (seen.has(si)) continue;
      seen.add(si);
      try {
        const all = await this.#o.tree.listSnapshots(root, options);
        const taken = await this.#o.tree.createSnapshot(root, { ...options, scheduledAt: period });
        result.taken++;
        all.push(taken);
        const names = new Map(snapshotNames(all).map(({ name, snapshot }) => [snapshot.epoch, name]));
        await this.#o.onChange?.({ operation: 'snapshot-create', root, name: names.get(taken.epoch) ?? '' });
        for (const old of expired(all, this.#o.keep)) {
          await this.#o.tree.removeSnapshot(old.cap, options);
          result.removed++;
          await this.#o.onChange?.({ operation: 'snapshot-remove', root, name: names.get(old.epoch) ?? '' });
        }
      } catch (err) {
        if (!isCapstanError(err)) throw err;
        result.failed++;
        this.#o.logger?.warn({ event: 'snapshot_failed', storageIndex: si, err }, 'a scheduled snapshot failed');
      }
    }
    if (result.removed > 0) await this.#o.slots.history?.prune(options);
    const { taken, removed, failed } = result;
    this.#o.logger?.info(
      { event: 'snapshots_taken', period: new Date(period).toISOString(), taken, removed, failed },
      'scheduled snapshots taken',
    );
    return result;
  }

  /** Moves the schedule slot to `period`; false if it is there already (this or another gateway took it). */
  async #claim(period: number, options: AbortOptions): Promise<boolean> {
    const si = scheduleStorageIndex();
    for (let attempt = 0; attempt < 8; attempt++) {
      const entry = await this.#o.slots.get(si, options);
      if (entry !== undefined && decodePeriod(entry.record) >= period) return false;
      try {
        await this.#o.slots.compareAndSwap(si, entry?.seq ?? null, { seq: (entry?.seq ?? 0n) + 1n, record: encodePeriod(period) }, options);
        return true;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    return false;
  }
}

/** The roots of the accounts file that are directory write caps (a read-only root has nothing to keep a past of). */
export function* accountRoots(accounts: AccountsFile): Iterable<DirectoryWriteCap> {
  for (const account of accounts.accounts.values()) {
    try {
      const cap = parseCap(account.rootCap);
      if (cap instanceof DirectoryWriteCap) yield cap;
    } catch {
      // A refused cap is the accounts file's to report.
    }
  }
}

/**
 * Events of scheduled snapshots: one per account whose root it is, recorded
 * after the pin (docs/spec/events.md: snapshots have no intent). A full
 * outbox or a failing write is logged; the schedule goes on.
 */
export function snapshotEvents(recorder: EventRecorder, accounts: AccountsFile, logger: Logger): (change: SnapshotChange) => Promise<void> {
  return async ({ operation, root, name }) => {
    const cap = root.toString();
    for (const [user, account] of accounts.accounts) {
      if (account.rootCap !== cap) continue;
      try {
        recorder.admit();
        await recordAround(recorder, { user, operation, base: 'root', path: `.snapshots/${name}` }, (begin) => begin([]));
      } catch (err) {
        logger.error({ event: 'snapshot_event_lost', user, operation, err }, 'the event of a scheduled snapshot could not be recorded');
      }
    }
  };
}

export function scheduleStorageIndex(): Uint8Array {
  return taggedHash(TAG.snapshotSchedule);
}

function encodePeriod(period: number): Uint8Array {
  const out = new Uint8Array(9);
  out[0] = RECORD_VERSION;
  new DataView(out.buffer).setBigUint64(1, BigInt(period), false);
  return out;
}

/** A record this version cannot read counts as period 0: the slot is moved on, not trusted. */
function decodePeriod(record: Uint8Array): number {
  if (record.length !== 9 || record[0] !== RECORD_VERSION) return 0;
  return Number(new DataView(record.buffer, record.byteOffset, 9).getBigUint64(1, false));
}

/**
 * The scheduled snapshots the policy no longer keeps: newest first, the
 * newest one of each of the last `hourly` hours, `daily` UTC days and
 * `weekly` weeks (Monday to Sunday, UTC) is kept, as restic's forget
 * --keep-hourly/--keep-daily/--keep-weekly. Manual snapshots are never
 * returned.
 */
export function expired(snapshots: readonly Snapshot[], keep: Retention): Snapshot[] {
  const scheduled = snapshots.filter((s) => isScheduledTime(s.createdMs)).sort((a, b) => b.createdMs - a.createdMs);
  const kept = new Set<Snapshot>();
  const bucket = (count: number, of: (ms: number) => number): void => {
    const buckets = new Set<number>();
    for (const s of scheduled) {
      const b = of(s.createdMs);
      if (buckets.has(b)) continue;
      if (buckets.size >= count) break;
      buckets.add(b);
      kept.add(s);
    }
  };
  bucket(keep.hourly, (ms) => Math.floor(ms / HOUR_MS));
  bucket(keep.daily, (ms) => Math.floor(ms / DAY_MS));
  // 1970-01-01 was a Thursday: shifting by 3 days starts weeks on Monday.
  bucket(keep.weekly, (ms) => Math.floor((ms + 3 * DAY_MS) / (7 * DAY_MS)));
  return scheduled.filter((s) => !kept.has(s));
}
