/**
 * The stops of servers (PostgreSQL, Swift, RabbitMQ, HAProxy) that a fixture
 * started and nobody has stopped yet. A fixture registers its stop as soon as
 * it has spawned anything, before it waits for the server to be ready; so if
 * a beforeAll hook times out in that wait, the test never got the handle it
 * would stop in afterAll, but test/setup/stop-servers.ts still stops the
 * server (by pid) after the test file's own afterAll hooks.
 *
 * Each test file runs in a process of its own (vitest's forks pool), so this
 * set holds only that file's servers.
 */

const pending = new Set<() => Promise<void>>();

/**
 * Registers `stop` (which MUST stop everything started so far by pid) and
 * answers it wrapped: run once however often it is called, and no longer
 * pending once it has run. The fixture's own stop should call the wrapper.
 */
export function registerServerStop(stop: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  const once = (): Promise<void> => {
    pending.delete(once);
    running ??= stop();
    return running;
  };
  pending.add(once);
  return once;
}

/** How many servers are registered and not stopped (for the fixtures' own test). */
export function registeredServerCount(): number {
  return pending.size;
}

/** Stops every server still registered (all at once); a failure is reported after all were tried. */
export async function stopRegisteredServers(): Promise<void> {
  const stops = [...pending];
  const results = await Promise.allSettled(stops.map((stop) => stop()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}
