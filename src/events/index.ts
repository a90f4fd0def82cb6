export * from './api.js';
export { Outbox, INTENT_VERSION, type OutboxOptions, type StoredIntent } from './outbox.js';
export { Dispatcher } from './dispatcher.js';
export { WebhookSink, signatureOf, SIGNATURE_HEADER, type WebhookSinkOptions } from './webhook-sink.js';
export { AmqpSink, type AmqpSinkOptions } from './amqp-sink.js';
export { OutboxRecorder, buildEvent, eventChecksums, resolveIntents, type CommitResolver } from './recorder.js';
export { entryDigest, holds, isCommitted, lacks } from './commit-check.js';
export { commandRecorder, startEvents, sinksOf, type EventsContext, type EventsService, type EventsSettings } from './service.js';
export { DropBoxRecorder, dropBoxDir, ingestDropBox } from './drop-box.js';
