import { readFileSync, writeFileSync } from 'node:fs';

/**
 * Memory of another process (the gateway), from /proc/PID/status:
 * VmRSS sampled every 100 ms, and VmHWM (the kernel's own peak, which
 * catches spikes shorter than the sampling interval). The peak is reset at
 * the start of each window by writing 5 to /proc/PID/clear_refs (Linux ≥
 * 4.0, allowed to root or the process's owner), so a window's VmHWM is that
 * window's peak, not the process's lifetime peak.
 */

export interface RssWindow {
  /** Highest sampled VmRSS, MiB. */
  peakRssMiB: number;
  /** VmHWM at the end of the window, MiB; the lifetime peak if the reset was refused. */
  hwmMiB: number;
  /** False if clear_refs was refused: hwmMiB then includes earlier windows. */
  hwmReset: boolean;
  samples: number;
}

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined; // the process is gone, or no procfs
  }
}

/** A process's VmRSS now, MiB; undefined if it is gone (or there is no procfs). */
export function rssMiB(pid: number): number | undefined {
  const kib = statusKiB(pid, 'VmRSS');
  return kib === undefined ? undefined : kib / 1024;
}

/** A window's peak: the kernel's VmHWM when it could be reset for the window (it sees spikes between samples), else the sampled peak. */
export function peakMiB(w: RssWindow): number {
  return w.hwmReset ? Math.max(w.hwmMiB, w.peakRssMiB) : w.peakRssMiB;
}

export class ProcRssSampler {
  readonly #pid: number;
  #timer: NodeJS.Timeout | undefined;
  #peakKiB = 0;
  #samples = 0;
  #hwmReset = false;

  constructor(pid: number) {
    this.#pid = pid;
  }

  /** True if /proc/PID/status is readable (Linux). */
  get available(): boolean {
    return statusKiB(this.#pid, 'VmRSS') !== undefined;
  }

  start(): void {
    this.stopTimer();
    try {
      writeFileSync(`/proc/${this.#pid}/clear_refs`, '5');
      this.#hwmReset = true;
    } catch {
      this.#hwmReset = false;
    }
    this.#peakKiB = 0;
    this.#samples = 0;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 100);
  }

  stop(): RssWindow {
    this.#sample();
    this.stopTimer();
    return {
      peakRssMiB: this.#peakKiB / 1024,
      hwmMiB: (statusKiB(this.#pid, 'VmHWM') ?? 0) / 1024,
      hwmReset: this.#hwmReset,
      samples: this.#samples,
    };
  }

  stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #sample(): void {
    const kib = statusKiB(this.#pid, 'VmRSS');
    if (kib === undefined) return;
    this.#samples += 1;
    if (kib > this.#peakKiB) this.#peakKiB = kib;
  }
}

/**
 * The gateway's sampled VmRSS over the whole benchmark, kept as the highest
 * value per label (the workload running at the time): shows where memory
 * grows and that it stays grown. Sampled only (VmHWM is reset by the
 * per-put windows above).
 */
export class RssTracker {
  readonly #pid: number;
  readonly peaksMiB: Record<string, number> = {};
  label = 'startup';
  #timer: NodeJS.Timeout | undefined;

  constructor(pid: number) {
    this.#pid = pid;
  }

  start(): void {
    this.#timer = setInterval(() => this.sample(), 100);
    this.#timer.unref();
  }

  sample(): void {
    const kib = statusKiB(this.#pid, 'VmRSS');
    if (kib === undefined) return;
    const mib = kib / 1024;
    if (mib > (this.peaksMiB[this.label] ?? 0)) this.peaksMiB[this.label] = mib;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
