import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time a server spends, from /proc: a measure that, unlike MB/s, hardly
 * moves with the machine's load (the benchmark often shares 2 cores with
 * other work).
 *
 * A server is a process tree: capstan is one process; OpenSSH's listener
 * forks a monitor per connection, which forks the session process, which
 * forks internal-sftp. Their CPU does not reliably reach the listener's
 * cutime (not every level waits for its child before exiting), so the
 * window samples the whole tree every 20 ms (via
 * /proc/PID/task/TID/children) and adds up each process's utime + stime
 * growth. A process that exits loses at most its last 20 ms (an OpenSSH
 * session has four processes: up to ~80 ms, a few % of a multi-second
 * transfer); capstan's process does not exit, so it loses nothing. The
 * error therefore favours OpenSSH, slightly.
 */

/** Linux's USER_HZ, the unit of /proc/PID/stat times; 100 on every mainstream architecture. */
const TICKS_PER_SECOND = 100;
/** Short, because an exiting process loses its last interval; a tick reads a handful of small /proc files. */
const INTERVAL_MS = 20;

/** The fields of /proc/PID/stat, or of /proc/PID/task/TID/stat for one thread; undefined if it is gone. */
function statFields(pid: number, tid?: number): number[] | undefined {
  try {
    const text = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after "(comm)", which may itself contain spaces or parentheses; state is index 0.
    return text
      .slice(text.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
  } catch {
    return undefined; // gone
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text !== '') for (const c of text.split(' ')) out.push(Number(c));
    }
  } catch {
    // gone, or no CONFIG_PROC_CHILDREN: the tree is just what was found
  }
  return out;
}

export class TreeCpuWindow {
  readonly #root: number;
  /** Keyed by pid and start time, so a reused pid is a new process. */
  readonly #baseline = new Map<string, { total: number; system: number }>();
  readonly #latest = new Map<string, { total: number; system: number }>();
  #timer: NodeJS.Timeout | undefined;

  /** Starts sampling the tree under `root`; processes already running count from now. */
  constructor(root: number) {
    this.#root = root;
    this.#sample(true);
    this.#timer = setInterval(() => this.#sample(false), INTERVAL_MS);
    this.#timer.unref();
  }

  /** CPU seconds the tree used since the window started. */
  stop(): number {
    this.#sample(false);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    return this.#sum('total');
  }

  /** Of the seconds stop() gave, those spent in the kernel (stime), for the system calls and page faults the tree made. */
  systemSeconds(): number {
    return this.#sum('system');
  }

  #sum(field: 'total' | 'system'): number {
    let ticks = 0;
    for (const [key, value] of this.#latest) ticks += value[field] - (this.#baseline.get(key)?.[field] ?? 0);
    return ticks / TICKS_PER_SECOND;
  }

  #sample(first: boolean): void {
    const pending = [this.#root];
    while (pending.length > 0) {
      const pid = pending.pop()!;
      const f = statFields(pid);
      if (!f) continue;
      // utime, stime: indexes 11 and 12; starttime: 19.
      const key = `${pid}:${f[19]}`;
      const times = { total: f[11]! + f[12]!, system: f[12]! };
      if (first) this.#baseline.set(key, times);
      this.#latest.set(key, times);
      pending.push(...childrenOf(pid));
    }
  }
}

/**
 * CPU seconds one thread of a process has used so far (utime + stime of
 * /proc/PID/task/TID/stat; the main thread's TID is the PID), undefined if
 * it is gone. For capstan's main thread, which runs the event loop: most of
 * what the gateway's own code changes moves there, and on this 2-core
 * machine that figure is far steadier than the whole process's, whose
 * worker threads wait for a core behind the SSH client.
 */
export function threadCpuSeconds(pid: number, tid = pid): number | undefined {
  const f = statFields(pid, tid);
  // utime, stime: indexes 11 and 12, as in TreeCpuWindow.
  return f === undefined ? undefined : ((f[11] ?? 0) + (f[12] ?? 0)) / TICKS_PER_SECOND;
}

/** True if this kernel lets us walk a process tree (CONFIG_PROC_CHILDREN). */
export function treeCpuAvailable(): boolean {
  try {
    readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8');
    return true;
  } catch {
    return false;
  }
}
