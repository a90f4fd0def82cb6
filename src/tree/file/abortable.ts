import { AbortError } from '../../errors.js';

/**
 * Settles like `promise`, or rejects with AbortError as soon as `signal`
 * fires, whichever comes first. The listener is removed either way, so a
 * long-lived signal does not collect one listener per wait.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(new AbortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** One signal that fires when any of the given ones does. */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}

/** Marks a promise's rejection as handled (it is observed elsewhere or deliberately dropped). */
export function ignoreRejection(promise: Promise<unknown>): void {
  promise.catch(() => undefined);
}
