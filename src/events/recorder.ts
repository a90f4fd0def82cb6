import { randomUUID } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Checksums } from '../tree/api.js';
import { provesNothingCommitted } from '../errors.js';
import {
  EVENT_FORMAT_VERSION,
  type CapstanEvent,
  type ChangeInput,
  type CommitCheck,
  type EventChecksum,
  type EventRecorder,
  type PendingChange,
} from './api.js';
import { INTENT_VERSION, type Outbox } from './outbox.js';

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

/** Decides whether an intent's change committed (CommitCheck against the tree; see commit-check.ts). */
export type CommitResolver = (check: CommitCheck) => Promise<boolean>;

/**
 * The EventRecorder the SFTP layer and the CLI get: writes the intent
 * (event id and time fixed there) before the change, turns it into the
 * event after. A full outbox is logged as an error every time it refuses a
 * change: the operator must fix the sink or raise the bound.
 */
export class OutboxRecorder implements EventRecorder {
  constructor(
    private readonly outbox: Outbox,
    private readonly gateway: string,
    private readonly log: Logger,
    private readonly resolver: CommitResolver,
    /** Called when an intent is left for later (its check could not run): the service retries it. */
    private readonly onUnresolved: () => void = () => {},
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

  async begin(change: ChangeInput, check: CommitCheck): Promise<PendingChange> {
    const event = buildEvent(change, this.gateway);
    try {
      await this.outbox.intend(event, check);
    } catch (err) {
      // Nothing is changed yet: the caller refuses the change.
      this.log.error(
        { event: 'event_intent_failed', operation: change.operation, user: change.user, err: (err as Error)?.message },
        'cannot write to the event outbox: change refused',
      );
      throw err;
    }
    return {
      committed: async () => {
        try {
          await this.outbox.commit(event);
        } catch (err) {
          // The intent is on disk: the next start publishes the event (the change is there to be found).
          this.log.error(
            { event: 'event_record_failed', operation: change.operation, user: change.user, id: event.id, err: (err as Error)?.message },
            'change committed but its event could not be written; its intent is resolved at the next start',
          );
          throw err;
        }
      },
      failed: async (cause) => {
        try {
          if (provesNothingCommitted(cause)) await this.outbox.drop(event.id);
          else if (await this.resolver(check)) await this.outbox.commit(event);
          else await this.outbox.drop(event.id);
        } catch (err) {
          this.log.warn(
            { event: 'event_intent_unresolved', operation: change.operation, id: event.id, err: (err as Error)?.message },
            'a failed change could not be checked: its intent is kept and checked again',
          );
          this.onUnresolved();
        }
      },
    };
  }
}

/**
 * Resolves the intents in the outbox (docs/spec/events.md, Intents): each
 * one whose change committed becomes its event (same id, same bytes), each
 * other is dropped. Returns how many could not be decided (a store failing):
 * they stay on disk for the next call.
 */
export async function resolveIntents(outbox: Outbox, resolver: CommitResolver, log: Logger): Promise<number> {
  let unresolved = 0;
  const seen = new Set<string>();
  for (;;) {
    const batch = (await outbox.intents()).filter((i) => !seen.has(i.event.id));
    if (batch.length === 0) return unresolved;
    for (const intent of batch) {
      seen.add(intent.event.id);
      if (intent.v !== INTENT_VERSION) {
        log.error({ event: 'event_intent_unknown', id: intent.event?.id, version: intent.v }, 'intent of an unknown version left alone');
        unresolved++;
        continue;
      }
      let committed: boolean;
      try {
        committed = await resolver(intent.check);
      } catch (err) {
        log.warn({ event: 'event_intent_unresolved', id: intent.event.id, err: (err as Error)?.message }, 'cannot check an intent yet');
        unresolved++;
        continue;
      }
      if (committed) await outbox.commit(intent.event);
      else await outbox.drop(intent.event.id);
      log.info(
        { event: 'event_intent_resolved', id: intent.event.id, operation: intent.event.operation, committed },
        committed ? 'change of an interrupted request was committed: event queued' : 'change of an interrupted request was not committed',
      );
    }
  }
}
