import { TransientError } from '../errors.js';
import type { Checksums } from '../tree/api.js';

/**
 * The events layer: what the gateway tells the outside world about committed
 * changes (docs/spec/events.md, docs/spec/event.schema.json). The SFTP layer
 * calls an EventRecorder; the node wires it to a durable Outbox and to the
 * configured sinks. Nothing here knows SFTP, and no event ever carries a cap.
 */

export const EVENT_FORMAT_VERSION = 1;

export const EVENT_OPERATIONS = ['upload', 'rename', 'remove', 'mkdir', 'rmdir', 'symlink'] as const;
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
 * Where the SFTP layer reports committed changes.
 *
 * - admit() MUST throw OutboxFullError, without side effects, when the
 *   outbox holds its configured maximum; the caller calls it before its
 *   commit, so a full outbox refuses the change instead of losing its event.
 * - record() MUST be called only after the change is committed (the slot
 *   CAS succeeded), and MUST resolve only once the event is durably queued
 *   (written to disk with sync). The caller acknowledges the client after.
 */
export interface EventRecorder {
  admit(): void;
  record(change: ChangeInput): Promise<void>;
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
