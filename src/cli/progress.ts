import { formatBytes, formatDuration } from './format.js';

/**
 * The progress line of long-running commands (put, get, check, gc, and any
 * later one): amount done, of how much, rate and ETA, redrawn in place on
 * stderr a few times a second.
 *
 * Only for a person watching: the line is drawn only when stderr is a
 * terminal, and not at all when the command's data goes to stdout and
 * stdout is that terminal too (`capstan get CAP` to the screen), so it can
 * never mix with data. Redirected or piped stderr gets nothing, so scripts
 * and logs see exactly what they saw before. Commands call finish() before
 * printing their result, which clears the line; lines that must appear
 * while it runs (check's problems) go through log(), which clears it first.
 *
 * Bounds: one timer, a rate window of at most RATE_SAMPLES samples.
 */

/** What the line needs of a stream: process.stderr, or a fake in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): boolean;
}

/** What `done` and `total` count: bytes (shown as KiB, MiB, … and per second), or things (chunks). */
export type ProgressUnit = 'bytes' | 'chunks' | 'entries';

export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** The command writes its data to stdout: stay off when stdout is a terminal. */
  dataOnStdout?: boolean;
  /** false: never draw (--no-progress). Default: when the stream is a terminal. */
  enabled?: boolean;
  /** Redraw period, ms. */
  intervalMs?: number;
  /** The clock, for tests. */
  now?: () => number;
  /** The stdout to test with dataOnStdout (default process.stdout). */
  stdout?: { isTTY?: boolean };
}

export const PROGRESS_INTERVAL_MS = 200;
/** The rate is measured over this much recent time, so it follows changes without jumping at each redraw. */
const RATE_WINDOW_MS = 5_000;
const RATE_SAMPLES = Math.ceil(RATE_WINDOW_MS / PROGRESS_INTERVAL_MS) + 1;

export class Progress {
  /** Whether the line is drawn at all. */
  readonly enabled: boolean;
  label: string;
  unit: ProgressUnit;
  /** Amount done so far, in `unit`. */
  done = 0;
  /** Amount expected in all, when known: gives the percentage and the ETA. */
  total: number | undefined;
  /** Extra figures after the rate, e.g. "12 files, 3 directories". */
  detail = '';

  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout | undefined;
  private samples: [number, number][] = [];
  private shown = 0;
  private finished = false;
  private readonly onSigint = (): void => {
    this.finish();
    // Die of the signal as we would have without a handler (exit status 130 in the shell).
    process.kill(process.pid, 'SIGINT');
  };

  constructor(label: string, unit: ProgressUnit, total: number | undefined, options: ProgressOptions = {}) {
    this.label = label;
    this.unit = unit;
    this.total = total;
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? Date.now;
    const stdoutIsTerminal = (options.stdout ?? process.stdout).isTTY === true;
    this.enabled = options.enabled !== false && this.stream.isTTY === true && !(options.dataOnStdout === true && stdoutIsTerminal);
    if (this.enabled) {
      this.timer = setInterval(() => this.tick(), options.intervalMs ?? PROGRESS_INTERVAL_MS);
      this.timer.unref();
      // Ctrl-C should not leave a half line under the shell prompt.
      process.once('SIGINT', this.onSigint);
    }
  }

  /** Adds `n` to the amount done. */
  add(n: number): void {
    this.done += n;
  }

  /** Starts a new phase (gc: mark, then sweep): new label, unit and total, counting from 0 with a fresh rate. */
  phase(label: string, unit: ProgressUnit, total?: number): void {
    this.label = label;
    this.unit = unit;
    this.total = total;
    this.done = 0;
    this.detail = '';
    this.samples = [];
  }

  /** Writes `line` on the stream as a line of its own, above the progress line (which the next redraw restores). */
  log(line: string): void {
    this.clear();
    this.stream.write(`${line}\n`);
  }

  /** Stops redrawing and clears the line. Idempotent. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    process.off('SIGINT', this.onSigint);
    this.clear();
  }

  /** Records a rate sample and redraws. The timer calls it; tests may too. */
  tick(): void {
    if (this.finished || !this.enabled) return;
    this.samples.push([this.now(), this.done]);
    if (this.samples.length > RATE_SAMPLES) this.samples.shift();
    this.draw(this.render());
  }

  /** The line as it would be drawn now (without padding or truncation). */
  render(): string {
    const parts = [this.label, this.amount(this.done)];
    if (this.total !== undefined && this.total > 0) {
      parts[1] += ` of ${this.amount(this.total)}`;
      parts.push(`${Math.min(100, Math.floor((this.done / this.total) * 100))}%`);
    }
    const rate = this.rate();
    if (rate !== undefined) {
      parts.push(
        `${this.unit === 'bytes' ? formatBytes(Math.round(rate)) : Math.round(rate)}${this.unit === 'bytes' ? '' : ` ${this.unit}`}/s`,
      );
      if (this.total !== undefined && rate > 0 && this.done < this.total)
        parts.push(`ETA ${formatDuration((this.total - this.done) / rate)}`);
    }
    if (this.detail !== '') parts.push(this.detail);
    return parts.join('  ');
  }

  /** Units per second over the recent window; undefined until there are two samples. */
  private rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last[0] <= first[0]) return undefined;
    return ((last[1] - first[1]) * 1000) / (last[0] - first[0]);
  }

  private amount(n: number): string {
    return this.unit === 'bytes' ? formatBytes(n) : `${n} ${this.unit}`;
  }

  /** Draws over the previous line: carriage return, text, spaces over what is left of a longer previous one. */
  private draw(text: string): void {
    // One column short of the width: writing the last column wraps on some terminals.
    // A pty nobody sized (script(1) without a terminal) reports 0 columns: assume 80.
    const width = Math.max(10, (this.stream.columns || 80) - 1);
    const line = text.length > width ? text.slice(0, width) : text;
    this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.shown - line.length))}`);
    this.shown = line.length;
  }

  private clear(): void {
    if (this.shown === 0) return;
    this.stream.write(`\r${' '.repeat(this.shown)}\r`);
    this.shown = 0;
  }
}

/** A progress line on stderr for a command; `--no-progress` turns it off. */
export function startProgress(
  label: string,
  unit: ProgressUnit,
  total: number | undefined,
  args: { progress?: boolean | undefined },
  options: Omit<ProgressOptions, 'enabled'> = {},
): Progress {
  return new Progress(label, unit, total, { ...options, ...(args.progress === false ? { enabled: false } : {}) });
}
