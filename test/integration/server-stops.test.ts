import { afterAll, describe, expect, it } from 'vitest';
import { Haproxy, haproxyMissing } from '../helpers/haproxy.js';
import { skipNotice } from '../helpers/openssh.js';
import { freePort } from '../helpers/rabbitmq.js';
import { registeredServerCount, stopRegisteredServers } from '../helpers/server-stops.js';
import { canConnect, waitFor } from '../helpers/wait.js';

/**
 * What test/setup/stop-servers.ts relies on, with a real HAProxy: a fixture
 * registers its stop before it waits for readiness, so a beforeAll that
 * times out in that wait (simulated: the start is left waiting for a port
 * nothing will open) still has its server stopped, by pid, and the start
 * then fails instead of leaving a process behind.
 */

const unavailable = process.env.CI === 'true' ? undefined : skipNotice(haproxyMissing(), 'server stops with HAProxy');

afterAll(stopRegisteredServers);

describe.skipIf(unavailable !== undefined)('servers registered before they are ready', () => {
  it('a start still waiting is stopped by stopRegisteredServers: its port closes and the start fails', async () => {
    const missingNow = haproxyMissing();
    if (missingNow !== undefined) throw new Error(`HAProxy needed: ${missingNow}`);
    const [listen, never] = [await freePort(), await freePort()];
    const config = [
      'defaults',
      '  mode tcp',
      '  timeout connect 1s',
      '  timeout client 1s',
      '  timeout server 1s',
      'frontend f',
      `  bind 127.0.0.1:${listen}`,
      '  default_backend b',
      'backend b',
      `  server s 127.0.0.1:${never}`,
      '',
    ].join('\n');
    expect(registeredServerCount()).toBe(0);
    // Ready only when `never` accepts connections, which it does not: the start waits, as a slow one would.
    const starting = Haproxy.start(config, never, 120_000);
    const outcome = starting.then(
      () => 'started',
      (err: Error) => err.message,
    );
    await waitFor(() => registeredServerCount() === 1, { timeoutMs: 20_000 });
    await waitFor(() => canConnect(listen), { timeoutMs: 20_000 });

    await stopRegisteredServers();
    expect(registeredServerCount()).toBe(0);
    expect(await canConnect(listen)).toBe(false);
    expect(await outcome).toMatch(/^haproxy exited/);
  }, 60_000);
});
