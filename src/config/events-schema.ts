import type { EventsSettings } from '../events/service.js';
import { EVENT_FORMATS } from '../events/localega.js';
import { enumType, intType, optionalUrlOf, optionalUrlType, pathType, stringType, type ConfigKey, type ValueType } from './types.js';

/**
 * The [events] section of capstan.cfg (docs/spec/events.md): the durable
 * outbox and its sinks, one HTTP webhook and one AMQP 0-9-1 broker, each on
 * when its URL is set. Kept here so the schema file only lists it.
 */

function key<T>(type: ValueType<T>, def: string, description: string): ConfigKey<T> {
  return { type, default: def, description };
}

/** Empty (off) or an amqp:// or amqps:// URL. */
export const optionalAmqpUrlType = optionalUrlOf(['amqp', 'amqps'], 'empty (off) or amqp(s) URL', 'empty or an amqp:// or amqps:// URL');

/** Empty (none) or a path. */
export const optionalPathType: ValueType<string | undefined> = {
  doc: 'empty or path',
  parse: (raw) => (raw === '' ? { ok: true, value: undefined } : pathType.parse(raw)),
};

export const EVENTS_KEYS = {
  format: key(
    enumType(EVENT_FORMATS),
    'capstan',
    "What the sinks send: capstan (capstan's event JSON, docs/spec/events.md) or localega (the LocalEGA inbox message: upload, rename and remove only, as CentralEGA's files.inbox expects it).",
  ),
  'outbox.dir': key(
    pathType,
    'store/outbox',
    "LevelDB directory of the event outbox (its own database, not the slot store's), relative to the node directory. Used only when a sink is configured.",
  ),
  'outbox.max_events': key(
    intType(1, 100_000_000, 'events'),
    '1000000',
    'Most events the outbox holds for a sink that has not confirmed them. When it is full, uploads, renames, removes, mkdirs and rmdirs are refused (FAILURE) and logged as errors until the sinks catch up.',
  ),
  'webhook.url': key(optionalUrlType, '', 'POST every event as JSON to this URL (2xx confirms). Empty: no webhook.'),
  'webhook.secret_file': key(
    optionalPathType,
    '',
    'File holding the HMAC key for the X-Capstan-Signature header (sha256=HEX of the body), relative to the node directory. Empty: requests are not signed.',
  ),
  'webhook.timeout': key(intType(1, 300, 'seconds'), '10', 'Timeout of one webhook request.'),
  'amqp.url': key(
    optionalAmqpUrlType,
    '',
    'Publish every event to this AMQP 0-9-1 broker (RabbitMQ), e.g. amqp://capstan:secret@mq.example:5672/%2F. Empty: no AMQP.',
  ),
  'amqp.exchange': key(
    stringType,
    '',
    'Exchange events are published to; it must exist (capstan does not declare it). Empty: the default exchange, where the routing key names the queue.',
  ),
  'amqp.routing_key': key(stringType, 'capstan.events', 'Routing key of every published event.'),
  'amqp.timeout': key(intType(1, 300, 'seconds'), '10', 'Timeout of connecting to the broker, and of its confirms of a published batch.'),
  'retry.initial_delay': key(
    intType(1, 600_000, 'milliseconds'),
    '500',
    'Wait before the first retry of a failed delivery; doubled for each further failure (with jitter).',
  ),
  'retry.max_delay': key(
    intType(1, 3_600_000, 'milliseconds'),
    '60000',
    'Longest wait between two delivery attempts. Deliveries are retried for ever.',
  ),
} as const;

type EventsRaw = { [K in keyof typeof EVENTS_KEYS]: (typeof EVENTS_KEYS)[K] extends ConfigKey<infer T> ? T : never };

export function resolveEvents(raw: EventsRaw, inNode: (p: string) => string): EventsSettings {
  const out: EventsSettings = {
    outboxDir: inNode(raw['outbox.dir']),
    format: raw.format,
    maxEvents: raw['outbox.max_events'],
    retryInitialMs: raw['retry.initial_delay'],
    retryMaxMs: Math.max(raw['retry.max_delay'], raw['retry.initial_delay']),
  };
  const webhookUrl = raw['webhook.url'];
  if (webhookUrl !== undefined) {
    const secret = raw['webhook.secret_file'];
    out.webhook = {
      url: webhookUrl,
      ...(secret !== undefined ? { secretFile: inNode(secret) } : {}),
      timeoutMs: raw['webhook.timeout'] * 1000,
    };
  }
  const amqpUrl = raw['amqp.url'];
  if (amqpUrl !== undefined) {
    out.amqp = { url: amqpUrl, exchange: raw['amqp.exchange'], routingKey: raw['amqp.routing_key'], timeoutMs: raw['amqp.timeout'] * 1000 };
  }
  return out;
}

export type { EventsSettings };
