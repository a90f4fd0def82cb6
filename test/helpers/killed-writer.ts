import { spawn } from 'node:child_process';

/**
 * The crash tests' writers (test/crash/*-writer.mjs): a child that works as
 * fast as it can and prints each thing it got acknowledged on stdout, until
 * it is SIGKILLed (by pid) at a random moment. What it printed before the kill
 * is what the reopened store MUST still have.
 */

export interface KilledRun {
  /** Everything the writer printed on stdout up to the kill (or its exit). */
  out: string;
  err: string;
  /** The exit code if the writer ended on its own before the kill; null if it was killed. */
  code: number | null;
}

export interface KillOptions {
  /**
   * Markers that MUST appear on stdout, in turn, before the kill is armed
   * (say, `ready\n` and a first acknowledgement, so a slow start on a loaded
   * machine still tests something).
   */
  after: string[];
  /** How long the writer runs once the last marker appeared: the random moment of the kill. */
  delayMs: number;
  /** How long to wait for each marker (default 60 s). */
  markerTimeoutMs?: number;
}

/** Runs `node script …args` and SIGKILLs it `delayMs` after the `after` markers, unless it exited first. */
export async function runUntilKilled(script: string, args: string[], options: KillOptions): Promise<KilledRun> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let closed = false;
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.on('error', (e) => (err += String(e)));
  const exited = new Promise<void>((resolve) =>
    child.on('close', () => {
      closed = true;
      resolve();
    }),
  );

  /** Resolves when `marker` is on stdout, looked for as each piece arrives (not by polling). */
  const printed = (marker: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const finish = (outcome: () => void): void => {
        clearTimeout(timer);
        child.stdout.off('data', look);
        child.off('close', gone);
        outcome();
      };
      const look = (): void => {
        if (out.includes(marker)) finish(resolve);
      };
      const gone = (): void => {
        if (out.includes(marker)) finish(resolve);
        else finish(() => reject(new Error(`writer exited before printing ${JSON.stringify(marker)}: ${err}`)));
      };
      const timeoutMs = options.markerTimeoutMs ?? 60_000;
      const timer = setTimeout(
        () => finish(() => reject(new Error(`writer printed no ${JSON.stringify(marker)} within ${timeoutMs} ms: ${err}`))),
        timeoutMs,
      );
      child.stdout.on('data', look);
      child.on('close', gone);
      if (closed) gone();
      else look();
    });

  try {
    for (const marker of options.after) await printed(marker);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, options.delayMs)))]);
    clearTimeout(timer);
  } finally {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await exited;
  }
  return { out, err, code: child.exitCode };
}
