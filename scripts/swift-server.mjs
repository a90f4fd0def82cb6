#!/usr/bin/env node
// A throwaway OpenStack Swift with the s3api middleware on loopback, for the
// S3 chunk store's tests and benchmark. Nothing lands in /etc/swift: every
// config file, ring, device directory and log lives in one temp directory.
//
//   node scripts/swift-server.mjs start   prints {"endpoint":…,"dir":…,"pids":[…]} and leaves it running
//   node scripts/swift-server.mjs stop DIR  kills the pids recorded in DIR/pids and removes DIR
//
// Needs Debian's python3-swift and memcached. Credentials: access key
// `test:tester`, secret `testing` (tempauth), path-style addressing only,
// region us-east-1. /usr/bin/python3 on purpose: a pyenv python3 earlier on
// PATH does not see Debian's packages.
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

export const PYTHON = '/usr/bin/python3';
export const MEMCACHED = '/usr/bin/memcached';
export const ACCESS_KEY = 'test:tester';
export const SECRET_KEY = 'testing';
export const REGION = 'us-east-1';

/** Why Swift cannot be started here, or undefined when it can. */
export function swiftUnavailable() {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  if (!existsSync(MEMCACHED)) return 'not installed: memcached';
  const probe = spawnSync(PYTHON, ['-c', 'import swift.common.middleware.s3api.s3api, swift.common.ring'], { stdio: 'ignore' });
  if (probe.status !== 0) return 'not installed: python3-swift (with s3api)';
  return undefined;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const common = (dir, port) => `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
swift_dir = ${dir}
devices = ${dir}/devices
mount_check = false
log_level = WARNING
log_address = ${dir}/no-syslog
`;

function configs(dir, ports) {
  return {
    'swift.conf': `[swift-hash]
swift_hash_path_suffix = capstan-test
swift_hash_path_prefix = capstan-test

[storage-policy:0]
name = gold
default = yes
`,
    'proxy-server.conf': `${common(dir, ports.proxy)}
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${ports.memcached}
[filter:s3api]
use = egg:swift#s3api
location = ${REGION}
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${SECRET_KEY} .admin
`,
    'account-server.conf': `${common(dir, ports.account)}
[pipeline:main]
pipeline = account-server
[app:account-server]
use = egg:swift#account
`,
    'container-server.conf': `${common(dir, ports.container)}
[pipeline:main]
pipeline = container-server
[app:container-server]
use = egg:swift#container
`,
    'object-server.conf': `${common(dir, ports.object)}
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
`,
  };
}

const RING_SCRIPT = `
import sys
from swift.common.ring import RingBuilder
d = sys.argv[1]
for name, port in (('account', int(sys.argv[2])), ('container', int(sys.argv[3])), ('object', int(sys.argv[4]))):
    b = RingBuilder(6, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'sdb1', 'weight': 100})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (d, name))
`;

const RUN_SCRIPT = `
import sys
from swift.common.utils import set_swift_dir
set_swift_dir(sys.argv[1])
from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(sys.argv[2], sys.argv[3], verbose=False))
`;

function spawnLogged(dir, name, command, args) {
  const log = openSync(path.join(dir, 'logs', `${name}.log`), 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', log, log], detached: false });
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/**
 * Swift answers through its proxy once a token, a container and an object
 * can all be made and read back: true then, false while any step fails. The
 * storage servers accepting connections is not enough. A port picked free can
 * be taken by another process before the server that was to listen on it
 * binds (Swift then retries its bind for 30 s), and the proxy answers 503 to
 * every request meanwhile.
 */
async function roundTrip(port) {
  const base = `http://127.0.0.1:${port}`;
  const call = async (url, init = {}) => {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(3000) });
    const body = await res.text();
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status}`);
    return { res, body };
  };
  try {
    const { res } = await call(`${base}/auth/v1.0`, { headers: { 'x-auth-user': ACCESS_KEY, 'x-auth-key': SECRET_KEY } });
    const storage = res.headers.get('x-storage-url');
    const headers = { 'x-auth-token': res.headers.get('x-auth-token') ?? '' };
    if (!storage) return false;
    const container = `${storage}/capstan-readiness`;
    await call(container, { method: 'PUT', headers });
    await call(`${container}/probe`, { method: 'PUT', headers, body: 'ok' });
    const { body } = await call(`${container}/probe`, { headers });
    await call(`${container}/probe`, { method: 'DELETE', headers });
    await call(container, { method: 'DELETE', headers });
    return body === 'ok';
  } catch {
    return false;
  }
}

/**
 * Starts memcached and the four Swift servers; resolves once an object can be
 * written and read back through the proxy (about 3 s). A start whose servers
 * do not get there within `attemptMs` is stopped and made again on fresh
 * ports, as is one whose process exited, up to `attempts` times (the last
 * one waits until `timeoutMs` is spent). On failure everything started is
 * stopped again before the error is thrown.
 *
 * `registerStop`, if given, is called before anything is spawned with a
 * function that stops (by pid) whatever has been started so far, and
 * answers the stop to use from then on: a caller that gives up waiting (a
 * test hook that timed out) can still stop the servers, and a start that
 * finds itself stopped spawns nothing more.
 */
export async function startSwift({
  timeoutMs = 45_000,
  attempts = 3,
  attemptMs = Math.max(15_000, timeoutMs / attempts),
  registerStop,
} = {}) {
  const reason = swiftUnavailable();
  if (reason) throw new Error(`cannot start Swift: ${reason}`);
  let current;
  let abandoned = false;
  const stop = registerStop
    ? registerStop(async () => {
        abandoned = true;
        if (current) await stopSwift(current);
      })
    : async () => {
        if (current) await stopSwift(current);
      };
  const deadline = Date.now() + timeoutMs;
  try {
    for (let attempt = 1; ; attempt++) {
      current = { dir: await mkdtemp(path.join(os.tmpdir(), 'capstan-swift-')), pids: [] };
      if (abandoned) throw new Error('Swift was stopped while it started');
      const last = attempt >= attempts;
      const started = await startOnce(current, Math.min(deadline, last ? deadline : Date.now() + attemptMs), () => abandoned);
      if ('endpoint' in started) {
        const { endpoint } = started;
        return { endpoint, dir: current.dir, pids: current.pids, accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, region: REGION };
      }
      if (last || Date.now() > deadline) throw new Error(`Swift did not start (${attempt} starts): ${started.failure}`);
      await stopSwift(current);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * One start on fresh ports: the proxy's endpoint once it answers, or why not
 * (a process exited, as memcached does at once when its port was taken, or
 * `deadline` passed).
 */
async function startOnce({ dir, pids }, deadline, abandoned) {
  await mkdir(path.join(dir, 'devices', 'sdb1'), { recursive: true });
  await mkdir(path.join(dir, 'logs'));
  const ports = {};
  for (const name of ['proxy', 'account', 'container', 'object', 'memcached']) ports[name] = await freePort();
  for (const [file, text] of Object.entries(configs(dir, ports))) await writeFile(path.join(dir, file), text);
  const rings = spawnSync(PYTHON, ['-c', RING_SCRIPT, dir, String(ports.account), String(ports.container), String(ports.object)], {
    encoding: 'utf8',
  });
  if (rings.status !== 0) throw new Error(`building rings failed: ${rings.stderr}`);
  if (abandoned()) throw new Error('Swift was stopped while it started');

  pids.push(
    spawnLogged(dir, 'memcached', MEMCACHED, [
      ...(process.getuid?.() === 0 ? ['-u', 'root'] : []),
      '-l',
      '127.0.0.1',
      '-p',
      String(ports.memcached),
      '-U',
      '0',
      '-m',
      '16',
    ]),
  );
  for (const name of ['account', 'container', 'object', 'proxy']) {
    pids.push(spawnLogged(dir, name, PYTHON, ['-c', RUN_SCRIPT, dir, path.join(dir, `${name}-server.conf`), `${name}-server`]));
  }
  await writeFile(path.join(dir, 'pids'), pids.join('\n') + '\n');

  for (;;) {
    if (await roundTrip(ports.proxy)) return { endpoint: `http://127.0.0.1:${ports.proxy}` };
    for (const pid of pids) {
      if (!alive(pid)) return { failure: `a Swift process exited at start: ${await logTail(dir)}` };
    }
    if (abandoned()) throw new Error('Swift was stopped while it started');
    if (Date.now() > deadline) return { failure: `no answer in time: ${await logTail(dir)}` };
    await sleep(200);
  }
}

async function logTail(dir) {
  let out = '';
  for (const name of ['proxy', 'account', 'container', 'object', 'memcached']) {
    const text = await readFile(path.join(dir, 'logs', `${name}.log`), 'utf8').catch(() => '');
    if (text) out += `\n[${name}] ${text.slice(-800)}`;
  }
  return out;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops every process started (by pid: TERM, then KILL after 3 s) and removes the directory. */
export async function stopSwift({ dir, pids }) {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 3000;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids.filter(alive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (dir) await rm(dir, { recursive: true, force: true });
}

async function main(argv) {
  const [command, dir] = argv;
  if (command === 'start') {
    const swift = await startSwift();
    process.stdout.write(JSON.stringify(swift) + '\n');
  } else if (command === 'stop' && dir) {
    const pids = (await readFile(path.join(dir, 'pids'), 'utf8')).split('\n').filter(Boolean).map(Number);
    await stopSwift({ dir, pids });
  } else {
    process.stderr.write('usage: swift-server.mjs start | stop DIR\n');
    process.exitCode = 2;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`swift-server: ${err.message}\n`);
    process.exitCode = 1;
  });
}
