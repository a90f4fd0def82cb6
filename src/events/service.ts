import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { Tree } from '../tree/api.js';
import { backoffDelay, pause } from '../util/backoff.js';
import type { EventRecorder, EventSink } from './api.js';
import { AmqpSink } from './amqp-sink.js';
import { isCommitted } from './commit-check.js';
import type { EventFormat } from './localega.js';
import { Dispatcher } from './dispatcher.js';
import { Outbox } from './outbox.js';
import { DropBoxRecorder, dropBoxDir, ingestDropBox } from './drop-box.js';
import { OutboxRecorder, resolveIntents, type CommitResolver } from './recorder.js';
import { WebhookSink } from './webhook-sink.js';

/**
 * The [events] section, as capstan.cfg's schema resolves it
 * (src/config/events-schema.ts) and as this layer uses it: one shape, paths
 * absolute, each sink present only when its URL is set.
 */
export interface EventsSettings {
  outboxDir: string;
  /** What sinks send: capstan's event JSON (the default) or the LocalEGA inbox message. */
  format: EventFormat;
  maxEvents: number;
  webhook?: { url: string; secretFile?: string; timeoutMs: number };
  amqp?: { url: string; exchange: string; routingKey: string; timeoutMs: number };
  retryInitialMs: number;
  retryMaxMs: number;
}

/** How often the gateway looks for events CLI commands recorded (a readdir of a small folder). */
const DROP_BOX_POLL_MS = 1000;

/** What the events need from the process that records them. */
export interface EventsContext {
  /** The [node] nickname, in every event. */
  gateway: string;
  /** Where intents left by a crash are looked up (the tree the changes are made in). */
  tree: Tree;
}

export interface EventsService {
  recorder: EventRecorder;
  outbox: Outbox;
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

/** The sinks configured in `settings` (none: events are off). */
export async function sinksOf(settings: EventsSettings, logger: Logger): Promise<EventSink[]> {
  const sinks: EventSink[] = [];
  if (settings.webhook !== undefined) {
    const { url, secretFile, timeoutMs } = settings.webhook;
    const secret = secretFile !== undefined ? Buffer.from((await readFile(secretFile, 'utf8')).replace(/\r?\n$/, ''), 'utf8') : undefined;
    sinks.push(new WebhookSink({ url, ...(secret ? { secret } : {}), timeoutMs, format: settings.format }));
  }
  if (settings.amqp !== undefined) {
    sinks.push(new AmqpSink({ ...settings.amqp, format: settings.format, logger: logger.child({ component: 'events', sink: 'amqp' }) }));
  }
  return sinks;
}

/**
 * Opens the outbox, resolves the intents a crash left (before any new
 * change: their events come first), and starts one delivery loop per
 * configured sink; undefined when no sink is configured. Intents that cannot
 * be checked yet (the slot store down) are retried in the background.
 */
export async function startEvents(settings: EventsSettings, context: EventsContext, logger: Logger): Promise<EventsService | undefined> {
  const sinks = await sinksOf(settings, logger);
  if (sinks.length === 0) return undefined;
  const log = logger.child({ component: 'events' });
  const outbox = await Outbox.open(settings.outboxDir, { maxEvents: settings.maxEvents, sinks: sinks.map((s) => s.name) });
  const backoff = { initialMs: settings.retryInitialMs, maxMs: settings.retryMaxMs };
  const resolver: CommitResolver = (check) => isCommitted(context.tree, check);
  const stop = new AbortController();
  let retrying: Promise<void> | undefined;
  const retryUnresolved = (): void => {
    retrying ??= (async () => {
      for (let attempt = 0; !stop.signal.aborted; attempt++) {
        await pause(backoffDelay(attempt, backoff), stop.signal);
        if (stop.signal.aborted || (await resolveIntents(outbox, resolver, log).catch(() => 1)) === 0) break;
      }
      retrying = undefined;
    })();
  };
  if ((await resolveIntents(outbox, resolver, log)) > 0) retryUnresolved();
  // Changes CLI commands made (drop-box.ts): taken in at start and then every DROP_BOX_POLL_MS.
  const incoming = dropBoxDir(settings.outboxDir);
  let ingesting: Promise<unknown> = ingestDropBox(incoming, outbox, resolver, log).catch((err: unknown) =>
    log.error({ event: 'event_dropbox_failed', err: (err as Error).message }, 'cannot take in CLI events'),
  );
  await ingesting;
  const poll = setInterval(() => {
    ingesting = ingesting.then(() =>
      ingestDropBox(incoming, outbox, resolver, log).catch((err: unknown) =>
        log.error({ event: 'event_dropbox_failed', err: (err as Error).message }, 'cannot take in CLI events'),
      ),
    );
  }, DROP_BOX_POLL_MS);
  poll.unref();
  const dispatcher = new Dispatcher(outbox, sinks, backoff, logger);
  dispatcher.start();
  log.info({ event: 'events_started', sinks: sinks.map((s) => s.name), pending: outbox.pending }, 'event delivery started');
  const recorder = new OutboxRecorder(outbox, context.gateway, log, resolver, retryUnresolved);
  return {
    recorder,
    outbox,
    dispatcher,
    async close() {
      clearInterval(poll);
      await ingesting;
      stop.abort();
      await retrying;
      await dispatcher.stop();
      await outbox.close();
    },
  };
}

/**
 * The recorder of a CLI command (src/cli): undefined when no sink is
 * configured, else one writing to the drop box the gateway takes in
 * (drop-box.ts), whether a gateway runs or not.
 */
export function commandRecorder(settings: EventsSettings, context: EventsContext): EventRecorder | undefined {
  if (settings.webhook === undefined && settings.amqp === undefined) return undefined;
  return new DropBoxRecorder(dropBoxDir(settings.outboxDir), context.gateway, (check) => isCommitted(context.tree, check));
}
