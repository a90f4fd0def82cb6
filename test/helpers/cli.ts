import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs the built CLI (dist/cli/main.js, built by `npm test`'s pretest or
 * `npx tsc`) as a real subprocess. Every process started here is tracked and
 * stopped by stopAllCli() (call it from afterEach/afterAll), by pid.
 */

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'dist/cli/main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  input?: string | Buffer | undefined;
  env?: Record<string, string | undefined>;
  cwd?: string;
  timeoutMs?: number;
  /** Flags for node itself, before the CLI's path (startCli only): `['--import', faults]`. */
  nodeFlags?: string[];
}

const running = new Set<ChildProcess>();

/** The environment the CLI runs with: no CAPSTAN_NODE_DIR leaking in from the developer's shell. */
function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CAPSTAN_NODE_DIR: undefined, ...extra };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? REPO,
      env: cliEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => stdout.push(d));
    child.stderr!.on('data', (d: Buffer) => stderr.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
    child.stdin!.on('error', () => undefined); // the CLI may exit without reading stdin
    child.stdin!.end(options.input ?? '');
  });
}

/** Like runCli, but stdout as bytes (for get - of binary files). */
export function runCliBinary(args: string[], options: CliOptions = {}): Promise<CliResult & { stdoutBytes: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? REPO, env: cliEnv(options.env) });
    running.add(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const bytes = Buffer.concat(stdout);
      resolve({ code, signal, stdout: bytes.toString('utf8'), stdoutBytes: bytes, stderr: Buffer.concat(stderr).toString('utf8') });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** A long-running CLI process (run, demo) with its output collected as it comes. */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString('utf8')));
    this.exited = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        running.delete(child);
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Waits until `pattern` appears on stderr (default) or stdout: looked for as
   * each piece of output arrives (after the constructor's listener has added
   * it), not by polling; fails early if the process exits first.
   */
  waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stderr', timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const source = this.child[stream]!;
    return new Promise((resolve, reject) => {
      const finish = (outcome: () => void): void => {
        clearTimeout(timer);
        source.off('data', look);
        outcome();
      };
      const look = (): boolean => {
        const m = this[stream].match(pattern);
        if (m) finish(() => resolve(m));
        return m !== null;
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`timed out waiting for ${pattern}; stderr: ${this.stderr.slice(-2000)}`))),
        timeoutMs,
      );
      if (look()) return;
      source.on('data', look);
      // 'close' comes after the last output, so a line printed just before exiting is still seen.
      void this.exited.then(() => {
        if (!look()) finish(() => reject(new Error(`process exited before ${pattern} appeared; stderr: ${this.stderr.slice(-2000)}`)));
      });
    });
  }

  /** Sends `signal` (by pid) and waits for the exit; SIGKILLs after `timeoutMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.pid, signal);
    const timer = setTimeout(() => {
      if (this.child.exitCode === null && this.child.signalCode === null) process.kill(this.pid, 'SIGKILL');
    }, timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export function startCli(args: string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), CLI, ...args], {
    cwd: options.cwd ?? REPO,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  return new CliProcess(child);
}

/** SIGKILLs, by pid, every CLI process a test started and did not stop. */
export async function stopAllCli(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      waits.push(new Promise((resolve) => child.once('close', resolve)));
      process.kill(child.pid, 'SIGKILL');
    }
  }
  running.clear();
  await Promise.all(waits);
}

export async function makeTempDir(prefix = 'capstan-cli-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Asserts the shape every CLI failure must have: exactly one `capstan: …` line, no stack trace. */
export function oneErrorLine(result: CliResult): string {
  const lines = result.stderr.split('\n').filter((l) => l !== '');
  if (lines.length !== 1 || !lines[0]!.startsWith('capstan: ')) {
    throw new Error(`expected one "capstan: …" line on stderr, got: ${JSON.stringify(result.stderr)}`);
  }
  if (/\n\s+at |Error:.*\n/.test(result.stderr)) throw new Error(`stack trace on stderr: ${result.stderr}`);
  return lines[0]!;
}

/** Any capstan cap (CS1:KIND:...) in `text`. */
export const CAP_IN_TEXT = /CS1:[A-Z-]+:[A-Za-z0-9]/;

export interface CheckedCliOptions extends Omit<CliOptions, 'input'> {
  /** stderr MUST be empty too (no warning, no progress line). */
  quiet?: boolean;
}

/** `capstan -d node …args`, which MUST exit 0: its stdout; otherwise an error naming the command, with its stderr. */
export async function cliOk(node: string, args: string[], input?: string | Buffer, options: CheckedCliOptions = {}): Promise<string> {
  const r = await runCli(['-d', node, ...args], { ...options, input });
  if (r.code !== 0) throw new Error(`capstan ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  if (options.quiet === true && r.stderr !== '') throw new Error(`capstan ${args.join(' ')} wrote to stderr: ${r.stderr}`);
  return r.stdout;
}

/**
 * `capstan -d node …args`, which MUST fail the way every CLI failure does:
 * exit 1, nothing on stdout, one `capstan: …` line with no cap in it. Answers
 * that line.
 */
export async function cliFails(node: string, args: string[], options: Omit<CliOptions, 'input'> = {}): Promise<string> {
  const r = await runCli(['-d', node, ...args], options);
  if (r.code !== 1) throw new Error(`capstan ${args.join(' ')}: expected exit 1, got ${r.code}: ${r.stderr}`);
  if (r.stdout !== '') throw new Error(`capstan ${args.join(' ')} failed but wrote to stdout: ${r.stdout}`);
  const line = oneErrorLine(r);
  if (CAP_IN_TEXT.test(line)) throw new Error(`capstan ${args.join(' ')}: a cap in the error line`);
  return line;
}

/**
 * cliOk and cliFails as `ok` and `fails`, for a node directory that a
 * beforeAll makes (hence read when each command runs).
 */
export function cliAt(
  node: () => string,
  options: CheckedCliOptions = {},
): { ok: (args: string[], input?: string | Buffer) => Promise<string>; fails: (args: string[]) => Promise<string> } {
  return {
    ok: (args, input) => cliOk(node(), args, input, options),
    fails: (args) => cliFails(node(), args, options),
  };
}
