import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canConnect } from './wait.js';
import { registerServerStop } from './server-stops.js';

/**
 * A throwaway RabbitMQ on loopback for tests: its own epmd on a free port
 * (ERL_EPMD_PORT, so a system epmd and other brokers are never touched), a
 * unique node name, data, logs and config in a temp dir, AMQP and
 * distribution ports picked free. Both processes are ours and are stopped by
 * pid. The broker takes ~5-15 s to start on a small machine.
 */

/** The real start script (the /usr/sbin wrapper would su to the rabbitmq user and log elsewhere). */
const SERVER_CANDIDATES = ['/usr/lib/rabbitmq/bin/rabbitmq-server'];

function onPath(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function rabbitmqServerBinary(): string | undefined {
  return SERVER_CANDIDATES.find((p) => existsSync(p)) ?? onPath('rabbitmq-server');
}

/** Why the RabbitMQ tests cannot run here, or undefined if they can. */
export function rabbitmqMissing(): string | undefined {
  if (rabbitmqServerBinary() === undefined) return 'rabbitmq-server is not installed (apt-get install rabbitmq-server)';
  if (onPath('epmd') === undefined) return 'epmd (Erlang) is not installed';
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess | undefined, timeoutMs = 20_000): Promise<void> {
  if (child === undefined || child.pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }, timeoutMs);
  await exited(child);
  clearTimeout(timer);
}

export class RabbitMq {
  #epmd: ChildProcess | undefined;
  #server: ChildProcess | undefined;
  /** Set once stopped for good: a start still under way spawns nothing more. */
  #abandoned = false;
  /** Set once the broker was started: later starts are restarts. */
  #started = false;
  /** stop(), registered with server-stops.ts before anything is spawned. */
  readonly #stop = registerServerStop(async () => {
    this.#abandoned = true;
    await this.stopBroker();
    await stopChild(this.#epmd, 5000);
    this.#epmd = undefined;
    await rm(this.dir, { recursive: true, force: true });
  });
  log = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    private distPort: number,
    private readonly epmdPort: number,
    private readonly nodeName: string,
  ) {}

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** Starts epmd and the broker; resolves when AMQP accepts connections. */
  static async start(): Promise<RabbitMq> {
    const dir = await mkdtemp(path.join(tmpdir(), 'capstan-rabbitmq-'));
    const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
    const mq = new RabbitMq(dir, port, distPort, epmdPort, `capstan_test_${process.pid}_${port}@localhost`);
    try {
      if (mq.#abandoned) throw new Error('RabbitMQ was stopped while it started');
      mq.#epmd = spawn('epmd', ['-port', String(epmdPort)], { stdio: 'ignore' });
      for (let i = 0; i < 50 && !(await canConnect(epmdPort)); i++) await new Promise((r) => setTimeout(r, 100));
      await writeFile(path.join(dir, 'rabbitmq.conf'), 'loopback_users = none\n');
      await writeFile(path.join(dir, 'enabled_plugins'), '[].\n');
      await mq.startBroker();
      return mq;
    } catch (err) {
      await mq.stop();
      throw err;
    }
  }

  /**
   * (Re)starts the broker on the same AMQP port and data directory (durable
   * queues survive). The Erlang distribution port is picked free again on a
   * restart: nothing outside the node uses it, and while the broker was down
   * another process may have taken the old one (the broker then exits with
   * dist_port_already_used, which failed a CI run).
   */
  async startBroker(timeoutMs = 60_000): Promise<void> {
    if (this.#started) this.distPort = await freePort();
    this.#started = true;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: this.dir,
      ERL_EPMD_PORT: String(this.epmdPort),
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_MNESIA_BASE: path.join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(this.dir, 'log'),
      RABBITMQ_CONFIG_FILE: path.join(this.dir, 'rabbitmq'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(this.dir, 'enabled_plugins'),
      RABBITMQ_LOGS: '-',
    };
    if (this.#abandoned) throw new Error('RabbitMQ was stopped while it started');
    const server = spawn(rabbitmqServerBinary()!, [], { env, cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#server = server;
    const collect = (d: Buffer): void => {
      this.log = (this.log + d.toString('utf8')).slice(-20_000);
    };
    server.stdout!.on('data', collect);
    server.stderr!.on('data', collect);
    const deadline = Date.now() + timeoutMs;
    while (!(await canConnect(this.port))) {
      if (server.exitCode !== null || server.signalCode !== null) throw new Error(`rabbitmq-server exited: ${this.log.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`rabbitmq-server did not start in ${timeoutMs} ms: ${this.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops the broker only (SIGTERM by pid, SIGKILL after 20 s); epmd keeps running. */
  async stopBroker(): Promise<void> {
    await stopChild(this.#server);
    this.#server = undefined;
  }

  /** Stops the broker and our epmd, and removes the temp dir (once, however often it is called). */
  stop(): Promise<void> {
    return this.#stop();
  }
}
