import { backoffDelay, sleep } from './backoff.js';

/** How long a process waits by default for another to let go of something it holds briefly (a database lock). */
export const LOCK_WAIT_MS = 5_000;

/**
 * Runs `attempt` until it succeeds or fails with something `isBusy` does not
 * recognise, waiting between tries (50 ms doubling to 500 ms) for at most
 * `waitMs` in all; then the last error is thrown. For resources another
 * process holds for a moment: the node's LevelDB while a CLI command runs, a
 * socket being replaced.
 */
export async function whileBusy<T>(attempt: () => Promise<T>, isBusy: (err: unknown) => boolean, waitMs = LOCK_WAIT_MS): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = backoffDelay(n, { initialMs: 50, maxMs: 500 });
      if (!isBusy(err) || Date.now() + delay > deadline) throw err;
      await sleep(delay);
    }
  }
}
