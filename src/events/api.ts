import { TransientError } from '../errors.js';
import type { Checksums } from '../tree/api.js';

/**
 * The events layer: what the gateway tells the outside world about committed
 * changes (docs/spec/events.md, docs/spec/event.schema.json). The SFTP layer
 * calls an EventRecorder; the node wires it to a durable Outbox and to the
 * configured sinks. Nothing here knows SFTP, and no event ever carries a cap.
 */

export const EVENT_FORMAT_VERSION = 1;

export const EVENT_OPERATIONS = ['upload', 'rename', 'remove', 'mkdir', 'rmdir', 'symlink', 'snapshot-create', 'snapshot-remove'] as const;
export type EventOperation = (typeof EVENT_OPERATIONS)[number];

/** What the SFTP layer knows about one committed change. */
export interface ChangeInput {
  user: string;
  operation: EventOperation;
  /**
   * `root`: `path` is relative to the user's root; `uri`: relative to a cap
   * the client named as /uri/CAP (the cap itself is a secret and never in an
   * event).
   */
  base: 'root' | 'uri';
  /** Names joined by '/', no leading '/'; '' is the base itself. */
  path: string;
  /** rename only: the old path (same base kind as `path`). */
  fromPath?: string;
  /** upload only. */
  size?: number;
  mtimeMs?: number;
  checksums?: Checksums;
}

export interface EventChecksum {
  type: 'sha256' | 'md5' | 'sha1';
  value: string;
}

/** One event as it is stored in the outbox and delivered, byte for byte, to every sink. */
export interface CapstanEvent {
  version: typeof EVENT_FORMAT_VERSION;
  /** UUID v4; a redelivered event has the same id (the way to drop duplicates). */
  id: string;
  /** When the gateway committed the change, ISO 8601 UTC with milliseconds. */
  time: string;
  /** The gateway's [node] nickname ('' if unset). */
  gateway: string;
  user: string;
  operation: EventOperation;
  base: 'root' | 'uri';
  path: string;
  fromPath?: string;
  size?: number;
  /** ISO 8601 UTC. */
  mtime?: string;
  checksums?: EventChecksum[];
}

/**
 * How a restart decides whether a change committed: one condition on one
 * directory entry. A change's CommitCheck lists conditions that are all true
 * once it committed and not all true before (docs/spec/events.md, Intents).
 */
export interface EntryCondition {
  /**
   * The directory's read cap, printed. A secret: it lives only in the
   * outbox's intent record (node-local, like the accounts file), never in an
   * event, a log or an error message.
   */
  dir: string;
  name: string;
  /** true: `name` holds the entry; false: it does not (removed, moved away). */
  holds: boolean;
  /** entryDigest of the entry's cap (hex SHA-256 of its read-only form): which entry, without the cap. */
  entry: string;
  /** `holds` only: the entry's ctime must be this too (an upload of bytes already there is a new entry). */
  ctimeMs?: number;
}

export type CommitCheck = readonly EntryCondition[];

/** A change whose intent is on disk; exactly one of its methods is called, once. */
export interface PendingChange {
  /**
   * The change committed (its slot update succeeded): resolves once its
   * event is durably queued. The caller acknowledges the client after.
   */
  committed(): Promise<void>;
  /**
   * The change failed with `err`. An error that proves nothing was committed
   * drops the intent; any other (a store failing mid-update) is decided by
   * the check now, or at the next start if the check cannot run. Never throws.
   */
  failed(err: unknown): Promise<void>;
}

/**
 * Where the SFTP layer and the CLI report changes (docs/spec/events.md).
 *
 * - admit() MUST throw OutboxFullError, without side effects, when the
 *   outbox holds its configured maximum; the caller calls it before its
 *   commit, so a full outbox refuses the change instead of losing its event.
 * - begin() MUST be called before the change's slot update and MUST resolve
 *   only once the intent (the event, with its id, and the check) is synced
 *   to disk; if it throws, the caller MUST NOT make the change.
 */
export interface EventRecorder {
  admit(): void;
  begin(change: ChangeInput, check: CommitCheck): Promise<PendingChange>;
}

/** Called by a change right before its slot update, with what decides later whether it committed. */
export type BeginChange = (check: CommitCheck) => Promise<void>;

/**
 * Runs `change` between an intent and its event: the one way callers record
 * a change. `change` MUST call `begin` once, after its last check that may
 * refuse and before the slot update it makes (for mkdir and rmdir, from the
 * tree's hook that runs there); it may throw before calling it. With no
 * recorder, `begin` does nothing.
 */
export async function recordAround<T>(
  recorder: EventRecorder | undefined,
  input: ChangeInput,
  change: (begin: BeginChange) => Promise<T>,
): Promise<T> {
  if (recorder === undefined) return change(async () => {});
  let pending: PendingChange | undefined;
  let result: T;
  try {
    result = await change(async (check) => {
      if (pending !== undefined) throw new Error('recordAround: begin called twice');
      pending = await recorder.begin(input, check);
    });
  } catch (err) {
    await pending?.failed(err);
    throw err;
  }
  // A change that turned out to have nothing to commit never began.
  await pending?.committed();
  return result;
}

/** The outbox is at its bound: the change is refused (the client may retry later). */
export class OutboxFullError extends TransientError {
  constructor(message = 'event outbox full') {
    super(message);
    this.name = 'OutboxFullError';
  }
}

/** A delivery failed and is worth retrying (network, broker, non-2xx). */
export class DeliveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeliveryError';
  }
}

/**
 * One destination. deliver() MUST resolve only when the destination has
 * confirmed every event given (a 2xx, a publisher confirm); it throws on
 * anything else, and the dispatcher retries the same events later, so a
 * sink sees an event at least once and possibly more often.
 */
export interface EventSink {
  /** Stable name: the outbox keeps this sink's cursor under it. */
  readonly name: string;
  /** The largest batch deliver() accepts. */
  readonly maxBatch: number;
  deliver(events: readonly StoredEvent[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** An event with its outbox sequence number and the exact JSON bytes sinks send. */
export interface StoredEvent {
  seq: bigint;
  event: CapstanEvent;
  body: string;
}
