import { spawn, type ChildProcess } from 'node:child_process';

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canConnect } from './wait.js';
import { REPO } from './cli.js';
import { missing } from './openssh.js';
import { registerServerStop } from './server-stops.js';

/**
 * A real HAProxy (Debian package haproxy) on loopback for tests, run in the
 * foreground from a config file in a temp dir and stopped by pid (SIGTERM,
 * then SIGKILL), even when the test failed. The configuration is the one
 * docs/operations.md publishes (haproxyConfigFromDocs), so the documentation
 * is what runs.
 */

export function haproxyMissing(): string | undefined {
  return missing('haproxy');
}

/**
 * The ```haproxy block of docs/operations.md that starts with
 * `# /etc/haproxy/haproxy.cfg`, with every port number named in `ports`
 * replaced by its value (nothing else changes).
 */
export async function haproxyConfigFromDocs(ports: Record<number, number>): Promise<string> {
  const doc = await readFile(path.join(REPO, 'docs/operations.md'), 'utf8');
  const block = [...doc.matchAll(/```haproxy\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith('# /etc/haproxy/haproxy.cfg'));
  if (block === undefined) throw new Error('no haproxy.cfg block in docs/operations.md');
  for (const documented of Object.keys(ports)) {
    if (!new RegExp(`\\b${documented}\\b`).test(block)) throw new Error(`port ${documented} is not in the documented haproxy.cfg`);
  }
  return block.replace(/\b\d{4,5}\b/g, (port) => String(ports[Number(port)] ?? port));
}

export class Haproxy {
  output = '';
  readonly #exited: Promise<void>;
  /** #halt, registered with server-stops.ts as soon as the process is spawned (before it is waited for). */
  readonly #stop = registerServerStop(() => this.#halt());

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
  ) {
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString('utf8')));
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Starts HAProxy with `config` and waits until `readyPort` accepts connections. */
  static async start(config: string, readyPort: number, timeoutMs = 20_000): Promise<Haproxy> {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-haproxy-'));
    const file = path.join(dir, 'haproxy.cfg');
    await writeFile(file, config);
    // -db: stay in the foreground, so the pid we hold is HAProxy's own.
    const proxy = new Haproxy(spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] }), dir);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) {
        await proxy.stop();
        throw new Error(`haproxy exited (${proxy.child.exitCode ?? proxy.child.signalCode}): ${proxy.output}`);
      }
      if (await canConnect(readyPort)) return proxy;
      if (Date.now() > deadline) {
        await proxy.stop();
        throw new Error(`haproxy did not listen on ${readyPort}: ${proxy.output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Each server's status (UP, DOWN, …) in `backend`, from the stats page's CSV. */
  static async serverStates(statsPort: number, backend: string): Promise<Record<string, string>> {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
    const [header, ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const cols = header!.split(',');
    const at = (name: string) => cols.indexOf(name);
    const states: Record<string, string> = {};
    for (const row of rows) {
      const f = row.split(',');
      if (f[at('pxname')] === backend && !['FRONTEND', 'BACKEND'].includes(f[at('svname')]!)) states[f[at('svname')]!] = f[at('status')]!;
    }
    return states;
  }

  /** SIGTERM by pid, SIGKILL after 10 s; removes the temp dir. Safe to call twice. */
  stop(): Promise<void> {
    return this.#stop();
  }

  async #halt(timeoutMs = 10_000): Promise<void> {
    const { child } = this;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      }, timeoutMs);
      await this.#exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
