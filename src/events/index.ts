export * from './api.js';
export { Outbox, type OutboxOptions } from './outbox.js';
export { Dispatcher } from './dispatcher.js';
export { WebhookSink, signatureOf, SIGNATURE_HEADER, type WebhookSinkOptions } from './webhook-sink.js';
export { AmqpSink, type AmqpSinkOptions } from './amqp-sink.js';
export { OutboxRecorder, buildEvent, eventChecksums } from './recorder.js';
export { startEvents, type EventsConfig, type EventsService } from './service.js';
