import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * Every process the benchmark starts (the servers, every sftp client)
 * goes through one ProcessRegistry, so that a failure, a timeout or a
 * Ctrl-C stops all of them by pid and nothing outlives the harness.
 */

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
}

/** Output kept per stream: a 10,000-line `ls -l` is ~800 KB; more than this is a runaway. */
const MAX_OUTPUT = 8 * 1024 * 1024;

export class ProcessRegistry {
  readonly #children = new Set<ChildProcess>();

  /** Starts a tracked child; it leaves the registry when it exits. */
  spawn(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /**
   * Runs a command to completion, collecting (bounded) output; SIGKILLed
   * after timeoutMs. `input` is written to its stdin (for secrets, which
   * must not be in its arguments: those are visible in ps).
   */
  run(cmd: string, args: string[], options: SpawnOptions & { timeoutMs?: number; input?: string } = {}): Promise<Finished> {
    const { timeoutMs = 600_000, input, ...spawnOptions } = options;
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const child = this.spawn(cmd, args, input === undefined ? spawnOptions : { ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] });
      child.stdin?.end(input);
      const out: string[] = [];
      const err: string[] = [];
      let outBytes = 0;
      let errBytes = 0;
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        if ((outBytes += d.length) <= MAX_OUTPUT) out.push(d);
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if ((errBytes += d.length) <= MAX_OUTPUT) err.push(d);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: out.join(''), stderr: err.join(''), ms: performance.now() - started });
      });
    });
  }

  /** Sends SIGTERM to every live child, then SIGKILL to those still alive after graceMs. */
  async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all([...this.#children].map((child) => stopChild(child, graceMs)));
  }
}

/** Stops one child by pid: SIGTERM, then SIGKILL after graceMs. Resolves once it has exited. */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Resolves with the first match of `pattern` in the child's stderr; rejects if it exits first or after timeoutMs. */
export function waitForStderr(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer | string): void => {
      seen = (seen + d.toString()).slice(-64 * 1024);
      const match = seen.match(pattern);
      if (match) finish(() => resolve(match));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      finish(() => reject(new Error(`exited (${signal ?? code}) before printing ${pattern}: ${seen.trim().slice(-2000)}`)));
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms: ${seen.trim().slice(-2000)}`))),
      timeoutMs,
    );
    const finish = (then: () => void): void => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      then();
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** A TCP port free on 127.0.0.1 right now (the usual bind-to-0 race is acceptable for a benchmark). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}
