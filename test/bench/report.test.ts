import { describe, expect, it } from 'vitest';
import { emptyResults, median, QUICK_SIZES } from '../../bench/context.js';
import { callersOf, formatSummary, summariseProfile } from '../../bench/cpu-profile.js';
import { isFlat, peakMiB, renderReport, type Machine, type RunMeta } from '../../bench/report.js';
import type { BenchServer } from '../../bench/servers.js';
import { outputLines, withMarks } from '../../bench/sftp.js';

/** The harness's pure parts; bench-smoke.test.ts runs the whole thing against real servers. */

const server = { name: 'capstan' } as BenchServer;
const finished = (stdout: string) => ({ code: 0, signal: null, stdout, stderr: '', ms: 1 });

describe('timing marks', () => {
  it("finds the two marks and removes them, even spliced into a line by sftp's buffering", () => {
    const stdout =
      'sftp> !date +BENCH-MARK%s%N\nBENCH-MARK1000000000\nsftp> ls -l grow\n-rw-r--r-- 1 a b 0 Jan 1 e0BENCH-MARK3500000000\n0001\n-rw-r--r-- 1 a b 0 Jan 1 e00002\n';
    const t = withMarks(finished(stdout), server);
    expect(t.seconds).toBe(2.5);
    expect(t.stdout).not.toMatch(/BENCH-MARK\d/);
    expect(outputLines(t.stdout)).toEqual(['-rw-r--r-- 1 a b 0 Jan 1 e00001', '-rw-r--r-- 1 a b 0 Jan 1 e00002']);
  });

  it('refuses output without both marks (a batch that stopped early is not a fast one)', () => {
    expect(() => withMarks(finished('BENCH-MARK1\n'), server)).toThrow(/2 timing marks/);
  });
});

describe('report', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('flat memory allows 10 % or 20 MiB, whichever is larger', () => {
    expect(isFlat(100, 120)).toBe(true);
    expect(isFlat(100, 121)).toBe(false);
    expect(isFlat(300, 330)).toBe(true);
    expect(isFlat(300, 331)).toBe(false);
  });

  it('uses VmHWM only when it was reset for the window', () => {
    expect(peakMiB({ peakRssMiB: 90, hwmMiB: 120, hwmReset: true, samples: 5 })).toBe(120);
    expect(peakMiB({ peakRssMiB: 90, hwmMiB: 500, hwmReset: false, samples: 5 })).toBe(90);
  });

  it('marks targets met and not met, and says when OpenSSH was skipped', () => {
    const r = emptyResults('aes128-gcm@openssh.com', new Map([['capstan', 150]]));
    r.putMBps = { capstan: [80, 90, 85], OpenSSH: [100, 100, 100] };
    r.getMBps = { capstan: [50], OpenSSH: [100] };
    r.lsSeconds = { capstan: [0.5] };
    r.rssBig = [{ peakRssMiB: 120, hwmMiB: 125, hwmReset: true, samples: 10 }];
    r.rssHuge = { peakRssMiB: 130, hwmMiB: 131, hwmReset: true, samples: 40 };
    r.dedup = { fileBytes: 1000, firstUploadBytes: 1100, secondUploadBytes: 20 };
    const machine: Machine = { cores: 2, cpuModel: 'x', memoryGiB: 4, node: 'v20', openssh: 'OpenSSH_9', kernel: 'Linux', date: 'now' };
    const meta: RunMeta = {
      quick: false,
      sizes: QUICK_SIZES,
      fsync: true,
      elapsedSeconds: 60,
      loadStart: [1, 1, 1],
      loadEnd: [1, 1, 1],
      workDir: '/x',
      skippedWorkloads: [],
      budgetSeconds: 510,
      runsDone: { transfer: 3 },
      runsSkipped: {},
    };
    const md = renderReport(r, machine, meta);
    expect(md).toMatch(/^\| put one 8 MiB file \(MB\/s\) \| 85\.0 \| 100\.0 \| 0\.85× \| ≥ 0\.8× OpenSSH \| met \|$/m);
    expect(md).toMatch(/^\| get one 8 MiB file \(MB\/s\) \| 50\.0 \| 100\.0 \| 0\.50× \| ≥ 0\.8× OpenSSH \| not met \|$/m);
    expect(md).toMatch(/^\| `ls -l` of 100 entries \(s\) \| 0\.500 \| — \| — \| < 1 s \| met \|$/m);
    expect(md).toMatch(/peak RSS during a 32 MiB put .* \| 131 \| .* \| < 200 MiB and flat \| met \|$/m);
    expect(md).toMatch(/second upload .* \| 20 bytes \(2\.000 %\) \| .* \| not met \|$/m);
    expect(renderReport(r, machine, { ...meta, openSshSkipped: 'not root' })).toMatch(/OpenSSH side skipped: not root/);
  });
});

describe('the S3 row', () => {
  const machine: Machine = { cores: 2, cpuModel: 'x', memoryGiB: 4, node: 'v20', openssh: 'OpenSSH_9', kernel: 'Linux', date: 'now' };
  const meta: RunMeta = {
    quick: true,
    sizes: QUICK_SIZES,
    fsync: true,
    elapsedSeconds: 60,
    loadStart: [1, 1, 1],
    loadEnd: [1, 1, 1],
    workDir: '/x',
    skippedWorkloads: [],
    budgetSeconds: 510,
    runsDone: { transfer: 1, s3: 1 },
    runsSkipped: {},
  };

  it("compares with OpenSSH's put and get of the same run when there are some", () => {
    const r = emptyResults('aes128-gcm@openssh.com', new Map());
    r.putMBps = { capstan: [80], OpenSSH: [100] };
    r.getMBps = { capstan: [90], OpenSSH: [200] };
    r.s3 = { fileBytes: 1024 ** 3, putMBps: 40, getMBps: 50 };
    const md = renderReport(r, machine, meta);
    expect(md).toMatch(
      /^\| put \/ get 1 GiB, chunks in S3 \(local Swift\) \(MB\/s\) \| 40\.0 \/ 50\.0 \| {2}\| 0\.40× \/ 0\.25× \| {2}\| {2}\|$/m,
    );
    // Right after the plain put/get rows and their CPU, before the small files.
    expect(md.indexOf('chunks in S3')).toBeGreaterThan(md.indexOf('server CPU per GiB got'));
    expect(md).toMatch(/^- capstan on S3 \(local Swift\), one run: put 40\.0 MB\/s, get 50\.0 MB\/s$/m);
  });

  it('says — without OpenSSH numbers, and skipped with the reason when Swift is missing', () => {
    const r = emptyResults('aes128-gcm@openssh.com', new Map());
    r.s3 = { fileBytes: 8 * 1024 ** 2, putMBps: 12.34, getMBps: 5 };
    expect(renderReport(r, machine, meta)).toMatch(
      /^\| put \/ get 8 MiB, chunks in S3 \(local Swift\) \(MB\/s\) \| 12\.3 \/ 5\.0 \| {2}\| — \|/m,
    );
    r.s3 = { fileBytes: 8 * 1024 ** 2, skipped: 'not installed: python3-swift (with s3api)' };
    const md = renderReport(r, machine, meta);
    expect(md).toMatch(
      /^\| put \/ get 8 MiB, chunks in S3 \(local Swift\) \(MB\/s\) \| skipped: not installed: python3-swift \(with s3api\) \| {2}\| — \| {2}\| {2}\|$/m,
    );
    expect(md).not.toMatch(/capstan on S3/);
    r.s3 = { fileBytes: 8 * 1024 ** 2, skipped: 'Swift did not start: a|b\nc' };
    expect(renderReport(r, machine, meta)).toContain('| skipped: Swift did not start: a\\|b c |');
  });

  it('has no row when the workload did not run', () => {
    expect(renderReport(emptyResults('c', new Map()), machine, meta)).not.toMatch(/chunks in S3/);
  });
});

describe('cpu profile summary', () => {
  it('adds self time per function, file and package, idle apart', () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9, columnNumber: 0 });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', ''), children: [2, 3, 4] },
        { id: 2, callFrame: frame('(idle)', '') },
        { id: 3, callFrame: frame('decrypt', 'file:///r/node_modules/ssh2/lib/protocol/crypto.js') },
        { id: 4, callFrame: frame('put', 'file:///r/dist/store/fs-chunk-store.js') },
      ],
      startTime: 0,
      endTime: 10,
      samples: [2, 3, 3, 4, 3],
      timeDeltas: [5000, 1000, 1000, 1000, 1000],
    };
    const s = summariseProfile(profile);
    expect(s.idleMs).toBe(5);
    expect(s.functions[0]).toMatchObject({ key: 'decrypt ssh2/lib/protocol/crypto.js:10', ms: 3, share: 0.75 });
    expect(s.packages.map((p) => p.key)).toEqual(['ssh2', 'capstan: store']);
    expect(formatSummary(s)).toMatch(/self time by function:/);
    expect(callersOf(profile, /^decrypt/)).toEqual([{ key: 'decrypt <- (root) (native):10', ms: 3, share: 1 }]);
  });
});
