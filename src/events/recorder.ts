import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Checksums } from '../tree/api.js';
import { EVENT_FORMAT_VERSION, type CapstanEvent, type ChangeInput, type EventChecksum, type EventRecorder } from './api.js';
import type { Outbox } from './outbox.js';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * The checksums of an upload as events carry them: sha256 first, then md5
 * and sha1 when the manifest records them ([storage] checksums); an
 * unrecorded one is omitted, never computed here.
 */
export function eventChecksums(sums: Checksums): EventChecksum[] {
  const out: EventChecksum[] = [{ type: 'sha256', value: hex(sums.sha256) }];
  if (sums.md5 !== undefined) out.push({ type: 'md5', value: hex(sums.md5) });
  if (sums.sha1 !== undefined) out.push({ type: 'sha1', value: hex(sums.sha1) });
  return out;
}

export function buildEvent(change: ChangeInput, gateway: string, now = new Date()): CapstanEvent {
  const event: CapstanEvent = {
    version: EVENT_FORMAT_VERSION,
    id: randomUUID(),
    time: now.toISOString(),
    gateway,
    user: change.user,
    operation: change.operation,
    base: change.base,
    path: change.path,
  };
  if (change.fromPath !== undefined) event.fromPath = change.fromPath;
  if (change.size !== undefined) event.size = change.size;
  if (change.mtimeMs !== undefined) event.mtime = new Date(change.mtimeMs).toISOString();
  if (change.checksums !== undefined) event.checksums = eventChecksums(change.checksums);
  return event;
}

/**
 * The EventRecorder the SFTP layer gets: builds the event (id, time) and
 * appends it to the outbox. A full outbox is logged as an error every time
 * it refuses a change: the operator must fix the sink or raise the bound.
 */
export class OutboxRecorder implements EventRecorder {
  constructor(
    private readonly outbox: Outbox,
    private readonly gateway: string,
    private readonly log: Logger,
  ) {}

  admit(): void {
    try {
      this.outbox.admit();
    } catch (err) {
      this.log.error(
        { event: 'event_outbox_full', pending: this.outbox.pending, max: this.outbox.maxEvents },
        'event outbox full: refusing changes until the sinks catch up',
      );
      throw err;
    }
  }

  async record(change: ChangeInput): Promise<void> {
    const event = buildEvent(change, this.gateway);
    try {
      await this.outbox.append(event);
    } catch (err) {
      // The change is committed already: say so, since the SFTP layer only sees a failed request.
      this.log.error(
        { event: 'event_record_failed', operation: change.operation, user: change.user, id: event.id, err: (err as Error)?.message },
        'change committed but its event could not be written to the outbox: the event is lost',
      );
      throw err;
    }
  }
}
