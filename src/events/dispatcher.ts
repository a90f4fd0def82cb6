import type { Logger } from '../log.js';
import type { EventSink, StoredEvent } from './api.js';
import { backoffDelay, pause, type BackoffPolicy } from '../util/backoff.js';
import type { Outbox } from './outbox.js';

/**
 * One delivery loop per sink: read the events after the sink's cursor, hand
 * them to the sink, move the cursor when it confirms; on failure wait
 * (exponential backoff with jitter) and send the same events again. Sinks
 * are independent: one down for an hour holds back only its own cursor
 * (and, through the outbox bound, eventually new commits), never the others.
 */
export class Dispatcher {
  readonly #outbox: Outbox;
  readonly #sinks: readonly EventSink[];
  readonly #backoff: BackoffPolicy;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #loops: Promise<void>[] = [];
  /** Per sink: consecutive failures (0 when healthy), for logs and metrics. */
  readonly failures = new Map<string, number>();
  /** Per sink: events confirmed since start (redeliveries counted again). */
  readonly delivered = new Map<string, number>();

  constructor(outbox: Outbox, sinks: readonly EventSink[], backoff: BackoffPolicy, logger: Logger) {
    this.#outbox = outbox;
    this.#sinks = sinks;
    this.#backoff = backoff;
    this.#log = logger.child({ component: 'events' });
  }

  start(): void {
    for (const sink of this.#sinks) this.#loops.push(this.#run(sink));
  }

  async #run(sink: EventSink): Promise<void> {
    const signal = this.#stop.signal;
    let attempt = 0;
    this.failures.set(sink.name, 0);
    this.delivered.set(sink.name, 0);
    while (!signal.aborted) {
      const after = this.#outbox.cursor(sink.name);
      let batch: StoredEvent[];
      try {
        batch = await this.#outbox.read(after, sink.maxBatch);
      } catch (err) {
        if (signal.aborted) return;
        this.#log.error({ event: 'outbox_read_failed', sink: sink.name, err: (err as Error).message }, 'cannot read the event outbox');
        await pause(backoffDelay(attempt++, this.#backoff), signal);
        continue;
      }
      if (batch.length === 0) {
        await this.#outbox.waitFor(after, signal);
        continue;
      }
      try {
        await sink.deliver(batch, signal);
      } catch (err) {
        if (signal.aborted) return;
        const delay = backoffDelay(attempt, this.#backoff);
        attempt++;
        this.failures.set(sink.name, attempt);
        // Loud: every failure is a warning, and an error once it has gone on for a while.
        const level = attempt >= 5 ? 'error' : 'warn';
        this.#log[level](
          {
            event: 'event_delivery_failed',
            sink: sink.name,
            attempt,
            retryInMs: delay,
            pending: this.#outbox.pending,
            err: (err as Error).message,
          },
          'event delivery failed; will retry',
        );
        await pause(delay, signal);
        continue;
      }
      if (attempt > 0) this.#log.info({ event: 'event_delivery_recovered', sink: sink.name, after: attempt }, 'event delivery recovered');
      attempt = 0;
      this.failures.set(sink.name, 0);
      this.delivered.set(sink.name, (this.delivered.get(sink.name) ?? 0) + batch.length);
      try {
        await this.#outbox.ack(sink.name, batch.at(-1)!.seq);
      } catch (err) {
        if (signal.aborted) return;
        this.#log.error(
          { event: 'outbox_ack_failed', sink: sink.name, err: (err as Error).message },
          'cannot record delivery; events will be sent again',
        );
        await pause(backoffDelay(0, this.#backoff), signal);
      }
    }
  }

  /** Stops the loops (a delivery in flight is aborted; its events stay queued) and closes the sinks. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#loops);
    await Promise.allSettled(this.#sinks.map((s) => s.close()));
  }
}
