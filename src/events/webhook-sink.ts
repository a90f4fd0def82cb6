import { createHmac } from 'node:crypto';
import { request } from 'undici';
import { DeliveryError, type EventSink, type StoredEvent } from './api.js';
import { bodyOf, type EventFormat } from './localega.js';

/**
 * HTTP webhook: one POST per event, the event's JSON as the body, and
 * `X-Capstan-Signature: sha256=<hex HMAC-SHA256(secret, body)>` so the
 * receiver can tell the gateway's requests from anyone else's. A 2xx
 * confirms; anything else, a timeout or a network error is retried by the
 * dispatcher with the same body (same id: receivers drop duplicates by it).
 */
export interface WebhookSinkOptions {
  url: string;
  /** The HMAC key (the secret file's bytes, trailing newline removed); none: no signature header. */
  secret?: Buffer;
  /** Per request, headers and body together. */
  timeoutMs: number;
  /** What is posted: capstan's event JSON, or the LocalEGA inbox message (localega.ts). Default capstan. */
  format?: EventFormat | undefined;
}

export const SIGNATURE_HEADER = 'x-capstan-signature';

export function signatureOf(secret: Buffer, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

export class WebhookSink implements EventSink {
  readonly name = 'webhook';
  /** One event per request: a receiver's 2xx then confirms exactly that event. */
  readonly maxBatch = 1;
  readonly #opts: WebhookSinkOptions;

  constructor(opts: WebhookSinkOptions) {
    this.#opts = opts;
  }

  async deliver(events: readonly StoredEvent[], signal: AbortSignal): Promise<void> {
    for (const stored of events) {
      const { event } = stored;
      const body = bodyOf(stored, this.#opts.format ?? 'capstan');
      if (body === undefined) continue;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-capstan-event-id': event.id,
      };
      if (this.#opts.secret !== undefined) headers[SIGNATURE_HEADER] = signatureOf(this.#opts.secret, body);
      let status: number;
      try {
        const res = await request(this.#opts.url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(this.#opts.timeoutMs)]),
        });
        status = res.statusCode;
        await res.body.dump();
      } catch (err) {
        // The URL may carry credentials: name only the failure.
        throw new DeliveryError(`webhook request failed: ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
      }
      if (status < 200 || status > 299) throw new DeliveryError(`webhook answered HTTP ${status}`);
    }
  }

  async close(): Promise<void> {}
}
