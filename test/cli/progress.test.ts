import { afterEach, describe, expect, it } from 'vitest';
import { formatBytes, formatDuration } from '../../src/cli/format.js';
import { Progress, type ProgressOptions } from '../../src/cli/progress.js';

/** A terminal-like stream that records what is written, and a clock the test moves. */
function fakeTerminal(isTTY = true, columns = 100) {
  const writes: string[] = [];
  let now = 0;
  const stream = { isTTY, columns, write: (t: string) => writes.push(t) > 0 };
  const options: ProgressOptions = { stream, now: () => now, intervalMs: 3_600_000, stdout: { isTTY: false } };
  return { writes, stream, options, advance: (ms: number) => (now += ms), output: () => writes.join('') };
}

/** What a terminal shows after `raw`: \r returns to column 0 and later text overwrites. */
function screen(raw: string): string[] {
  const lines: string[][] = [[]];
  let col = 0;
  for (const ch of raw) {
    const line = lines[lines.length - 1]!;
    if (ch === '\r') col = 0;
    else if (ch === '\n') {
      lines.push([]);
      col = 0;
    } else {
      line[col++] = ch;
    }
  }
  return lines.map((l) => l.join('').trimEnd());
}

const opened: Progress[] = [];
afterEach(() => {
  for (const p of opened.splice(0)) p.finish();
});
function progress(label: string, unit: 'bytes' | 'chunks', total: number | undefined, options: ProgressOptions): Progress {
  const p = new Progress(label, unit, total, options);
  opened.push(p);
  return p;
}

describe('the progress line', () => {
  it('shows bytes of the total, percentage, rate over recent time and ETA, redrawn in place', () => {
    const t = fakeTerminal();
    const p = progress('put', 'bytes', 4 * 2 ** 20, t.options);
    p.tick();
    expect(p.render()).toBe('put  0 B of 4.0 MiB  0%');
    t.advance(1000);
    p.add(2 ** 20);
    p.tick();
    expect(p.render()).toBe('put  1.0 MiB of 4.0 MiB  25%  1.0 MiB/s  ETA 0:03');
    t.advance(1000);
    p.add(2 ** 20);
    p.detail = '3 files';
    p.tick();
    expect(p.render()).toBe('put  2.0 MiB of 4.0 MiB  50%  1.0 MiB/s  ETA 0:02  3 files');
    // Each draw starts at column 0; the screen shows only the latest.
    expect(t.writes.every((w) => w.startsWith('\r'))).toBe(true);
    expect(screen(t.output())).toEqual(['put  2.0 MiB of 4.0 MiB  50%  1.0 MiB/s  ETA 0:02  3 files']);
    p.finish();
    expect(screen(t.output())).toEqual(['']);
  });

  it('counts things when there are no bytes to count, and has no ETA without a total', () => {
    const t = fakeTerminal();
    const p = progress('gc: sweep', 'chunks', undefined, t.options);
    p.tick();
    t.advance(2000);
    p.done = 500;
    p.tick();
    expect(p.render()).toBe('gc: sweep  500 chunks  250 chunks/s');
    p.phase('gc: next', 'chunks');
    expect(p.render()).toBe('gc: next  0 chunks');
  });

  it('fits the terminal width, and a shorter line blanks out what a longer one left', () => {
    const t = fakeTerminal(true, 30);
    const p = progress('check', 'chunks', undefined, t.options);
    p.detail = 'x'.repeat(100);
    p.tick();
    expect(t.writes.at(-1)!.length).toBe(1 + 29);
    p.detail = '';
    p.tick();
    expect(screen(t.output())).toEqual(['check  0 chunks']);
  });

  it('prints lines above itself (check problems) and clears itself before the result', () => {
    const t = fakeTerminal();
    const p = progress('verify', 'bytes', undefined, t.options);
    p.tick();
    p.log('capstan: missing: a/b: chunk 1 of 2');
    p.tick();
    p.finish();
    t.stream.write('verified 1 directories\n');
    expect(screen(t.output())).toEqual(['capstan: missing: a/b: chunk 1 of 2', 'verified 1 directories', '']);
    // finish is idempotent, and nothing is drawn after it.
    p.finish();
    p.tick();
    expect(screen(t.output()).at(-1)).toBe('');
  });

  it('draws nothing when stderr is not a terminal, only the lines it is asked to print', () => {
    const t = fakeTerminal(false);
    const p = progress('put', 'bytes', 100, t.options);
    expect(p.enabled).toBe(false);
    p.add(50);
    p.tick();
    p.log('a problem');
    p.finish();
    expect(t.output()).toBe('a problem\n');
  });

  it('draws nothing when the data goes to stdout and stdout is the terminal, or with --no-progress', () => {
    const t = fakeTerminal();
    expect(progress('get', 'bytes', 1, { ...t.options, dataOnStdout: true, stdout: { isTTY: true } }).enabled).toBe(false);
    expect(progress('get', 'bytes', 1, { ...t.options, dataOnStdout: true, stdout: { isTTY: false } }).enabled).toBe(true);
    expect(progress('put', 'bytes', 1, { ...t.options, enabled: false }).enabled).toBe(false);
    for (const p of opened) p.tick();
    expect(t.output()).toBe('\rget  0 B of 1 B  0%');
  });
});

describe('figures', () => {
  it('bytes in powers of 1024 and durations as M:SS or H:MM:SS', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 2 ** 30)).toBe('5.0 GiB');
    expect(formatDuration(7)).toBe('0:07');
    expect(formatDuration(754)).toBe('12:34');
    expect(formatDuration(3723)).toBe('1:02:03');
  });
});
