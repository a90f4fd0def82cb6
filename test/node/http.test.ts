import { afterEach, describe, expect, it } from 'vitest';
import { startHttpListener, type HealthProbe, type HttpListener } from '../../src/node/http.js';
import { silentLogger } from '../../src/log.js';

let listener: HttpListener | undefined;
afterEach(async () => {
  await listener?.close();
  listener = undefined;
});

async function start(probes: HealthProbe[], probeTimeoutMs = 200): Promise<string> {
  listener = await startHttpListener({
    listen: { host: '127.0.0.1', port: 0 },
    probes,
    probeTimeoutMs,
    metrics: () => 'capstan_up 1\n',
    logger: silentLogger(),
  });
  return `http://127.0.0.1:${listener.address.port}`;
}

const ok: HealthProbe = { name: 'chunk store', run: async () => true };

describe('HTTP listener', () => {
  it('answers /healthz 200 when every probe answers', async () => {
    const base = await start([ok, { name: 'slot store', run: async () => undefined }]);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok\n');
  });

  it('answers 503 naming the component when a probe fails or hangs', async () => {
    const base = await start([
      ok,
      { name: 'slot store', run: async () => Promise.reject(Object.assign(new Error('x'), { name: 'TransientError' })) },
      // Ignores its signal on purpose: the deadline must still win.
      { name: 'stuck store', run: () => new Promise(() => undefined) },
    ]);
    const started = Date.now();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('unhealthy: slot store: TransientError\nunhealthy: stuck store: timed out\n');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('serves /metrics as Prometheus text, 404 elsewhere, 405 for other methods', async () => {
    const base = await start([ok]);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await res.text()).toBe('capstan_up 1\n');
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });
});
