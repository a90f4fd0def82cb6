import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from '../log.js';
import { DeliveryError, type EventSink, type StoredEvent } from './api.js';
import { bodyOf, type EventFormat } from './localega.js';

/**
 * AMQP 0-9-1 (RabbitMQ) publisher. Every event is published persistent
 * (deliveryMode 2), contentType application/json, messageId and
 * correlationId = the event id, `type` = capstan.<operation>, mandatory, on
 * a ConfirmChannel: deliver() resolves only once the broker has confirmed
 * (acked) every message of the batch. A nack, a returned (unroutable)
 * message, a closed channel or connection fails the batch; the dispatcher
 * retries it after its backoff, and the next deliver() reconnects.
 *
 * mandatory matters: without it a message the exchange routes to no queue
 * is confirmed and dropped by the broker; with it the event stays in the
 * outbox (logged loudly) until a queue is bound.
 */
export interface AmqpSinkOptions {
  url: string;
  /** '' is the default exchange (routing key = queue name). */
  exchange: string;
  routingKey: string;
  logger: Logger;
  /** Connect timeout, and how long the broker may take to confirm a batch. */
  timeoutMs: number;
  /** What is published: capstan's event JSON, or the LocalEGA inbox message (localega.ts). Default capstan. */
  format?: EventFormat | undefined;
}

export class AmqpSink implements EventSink {
  readonly name = 'amqp';
  readonly maxBatch = 100;
  readonly #opts: AmqpSinkOptions;
  #connection: ChannelModel | undefined;
  #channel: ConfirmChannel | undefined;
  #returned = new Set<string>();

  constructor(opts: AmqpSinkOptions) {
    this.#opts = opts;
  }

  async #connect(): Promise<ConfirmChannel> {
    if (this.#channel !== undefined) return this.#channel;
    let connection: ChannelModel;
    try {
      connection = await amqp.connect(this.#opts.url, { timeout: this.#opts.timeoutMs });
    } catch (err) {
      // The URL may carry a password: never log or rethrow it.
      throw new DeliveryError(`cannot connect to the AMQP broker: ${(err as Error).message}`.replace(this.#opts.url, '<url>'));
    }
    const forget = (): void => {
      if (this.#connection === connection) {
        this.#connection = undefined;
        this.#channel = undefined;
      }
    };
    connection.on('error', (err: Error) =>
      this.#opts.logger.warn({ event: 'amqp_connection_error', err: err.message }, 'AMQP connection error'),
    );
    connection.on('close', forget);
    try {
      const channel = await connection.createConfirmChannel();
      channel.on('error', (err: Error) => this.#opts.logger.warn({ event: 'amqp_channel_error', err: err.message }, 'AMQP channel error'));
      channel.on('close', forget);
      channel.on('return', (msg: amqp.Message) => {
        if (typeof msg.properties.messageId === 'string') this.#returned.add(msg.properties.messageId);
      });
      if (this.#opts.exchange !== '') await channel.checkExchange(this.#opts.exchange);
      this.#connection = connection;
      this.#channel = channel;
      this.#opts.logger.info({ event: 'amqp_connected', exchange: this.#opts.exchange }, 'connected to the AMQP broker');
      return channel;
    } catch (err) {
      await connection.close().catch(() => {});
      throw new DeliveryError(`AMQP channel setup failed: ${(err as Error).message}`);
    }
  }

  async deliver(events: readonly StoredEvent[], signal: AbortSignal): Promise<void> {
    const channel = await this.#connect();
    this.#returned.clear();
    const onAbort = (): void => void this.#drop();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (const stored of events) {
        const { event } = stored;
        const body = bodyOf(stored, this.#opts.format ?? 'capstan');
        if (body === undefined) continue;
        channel.publish(this.#opts.exchange, this.#opts.routingKey, Buffer.from(body, 'utf8'), {
          persistent: true,
          deliveryMode: 2,
          mandatory: true,
          contentType: 'application/json',
          messageId: event.id,
          correlationId: event.id,
          // LocalEGA consumers get the inbox message and the properties its inbox sets, nothing of capstan's own.
          ...(this.#opts.format === 'localega' ? {} : { type: `capstan.${event.operation}` }),
          timestamp: Math.floor(Date.parse(event.time) / 1000),
        });
      }
      // A blocked connection (a broker memory or disk alarm) would otherwise wait for ever.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no confirm within ${this.#opts.timeoutMs} ms`)), this.#opts.timeoutMs);
      });
      try {
        await Promise.race([channel.waitForConfirms(), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      await this.#drop();
      throw new DeliveryError(`AMQP publish not confirmed: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    // basic.return arrives before the ack of the same message, so it is known by now.
    if (events.some(({ event }) => this.#returned.has(event.id))) {
      throw new DeliveryError(
        `AMQP broker could not route events (no queue bound to exchange "${this.#opts.exchange}" with key "${this.#opts.routingKey}")`,
      );
    }
  }

  async #drop(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    this.#channel = undefined;
    await connection?.close().catch(() => {});
  }

  async close(): Promise<void> {
    await this.#drop();
  }
}
