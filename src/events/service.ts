import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { EventRecorder, EventSink } from './api.js';
import { AmqpSink } from './amqp-sink.js';
import { Dispatcher } from './dispatcher.js';
import { Outbox } from './outbox.js';
import { OutboxRecorder } from './recorder.js';
import { WebhookSink } from './webhook-sink.js';

/** The [events] section as the node hands it over (paths absolute). */
export interface EventsConfig {
  outboxDir: string;
  maxPending: number;
  gateway: string;
  webhook?: { url: string; secretFile?: string | undefined; timeoutMs: number };
  amqp?: { url: string; exchange: string; routingKey: string; timeoutMs: number };
  retryInitialMs: number;
  retryMaxMs: number;
}

export interface EventsService {
  recorder: EventRecorder;
  outbox: Outbox;
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

/** Opens the outbox and starts one delivery loop per configured sink; undefined when no sink is configured. */
export async function startEvents(config: EventsConfig, logger: Logger): Promise<EventsService | undefined> {
  const sinks: EventSink[] = [];
  if (config.webhook !== undefined) {
    const secret =
      config.webhook.secretFile !== undefined
        ? Buffer.from((await readFile(config.webhook.secretFile, 'utf8')).replace(/\r?\n$/, ''), 'utf8')
        : undefined;
    sinks.push(new WebhookSink({ url: config.webhook.url, ...(secret ? { secret } : {}), timeoutMs: config.webhook.timeoutMs }));
  }
  if (config.amqp !== undefined) {
    sinks.push(new AmqpSink({ ...config.amqp, logger: logger.child({ component: 'events', sink: 'amqp' }) }));
  }
  if (sinks.length === 0) return undefined;
  const outbox = await Outbox.open(config.outboxDir, { maxEvents: config.maxPending, sinks: sinks.map((s) => s.name) });
  const dispatcher = new Dispatcher(outbox, sinks, { initialMs: config.retryInitialMs, maxMs: config.retryMaxMs }, logger);
  dispatcher.start();
  logger.info({ event: 'events_started', sinks: sinks.map((s) => s.name), pending: outbox.pending }, 'event delivery started');
  const recorder = new OutboxRecorder(outbox, config.gateway, logger.child({ component: 'events' }));
  return {
    recorder,
    outbox,
    dispatcher,
    async close() {
      await dispatcher.stop();
      await outbox.close();
    },
  };
}
