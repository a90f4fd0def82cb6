import { connect } from 'node:net';
import { vi } from 'vitest';

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Look again after this long (default 20 ms). */
  intervalMs?: number;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Waits until `condition` returns something truthy, and returns it: for state
 * that announces itself by no event (a counter, a log line, a file on disk, a
 * login that starts to work). Where there is an event or a promise, await that
 * instead. A condition that throws ends the wait at once with its error (a
 * process that exited will not print the line any more). Built on
 * vi.waitUntil; the timeout names the condition.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 20 }: WaitOptions = {},
): Promise<Truthy<T>> {
  try {
    return (await vi.waitUntil(condition, { timeout: timeoutMs, interval: intervalMs })) as Truthy<T>;
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('Timed out in waitUntil')) {
      throw new Error(`not met within ${timeoutMs} ms: ${condition.toString()}`, { cause: err });
    }
    throw err;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now (a server's readiness, looked at once). */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
