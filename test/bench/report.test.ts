import { describe, expect, it } from 'vitest';
import { emptyResults, forEachServer, median, QUICK_SIZES, type BenchContext } from '../../bench/context.js';
import { callersOf, formatSummary, summariseProfile } from '../../bench/cpu-profile.js';
import { isFlat, renderReport, tableRows, targetResults, type Machine, type RunMeta } from '../../bench/report.js';
import { peakMiB } from '../../bench/rss.js';
import type { BenchServer } from '../../bench/servers.js';
import { outputLines, withMarks } from '../../bench/sftp.js';
import { checkTarget, TARGETS, targetText } from '../../bench/targets.js';

/** The harness's pure parts; bench-smoke.test.ts runs the whole thing against real servers. */

const server = { name: 'capstan' } as BenchServer;
const finished = (stdout: string) => ({ code: 0, signal: null, stdout, stderr: '', ms: 1 });

const machine: Machine = {
  cores: 2,
  cpuModel: 'x',
  memoryGiB: 4,
  node: 'v20',
  openssh: 'OpenSSH_9',
  rclone: 'rclone v1.60.1',
  sshCrypto: "ssh2's native crypto binding",
  kernel: 'Linux',
  date: 'now',
};

const meta: RunMeta = {
  quick: false,
  sizes: QUICK_SIZES,
  fsync: true,
  diskSyncMs: 1.25,
  elapsedSeconds: 60,
  loadStart: [1, 1, 1],
  loadEnd: [1, 1, 1],
  workDir: '/x',
  skippedWorkloads: [],
  budgetSeconds: 600,
  runsDone: { transfer: 3 },
  runsSkipped: {},
};

/** The table line of the row whose name starts with `start` (a markdown row: `| name | ... |`). */
function row(md: string, start: string): string {
  const line = md.split('\n').find((l) => l.startsWith(`| ${start}`));
  if (line === undefined) throw new Error(`no row starting with "${start}" in:\n${md}`);
  return line;
}

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

describe('forEachServer', () => {
  const servers = (['capstan', 'OpenSSH', 'rclone'] as const).map((name) => ({ name }) as BenchServer);
  const ctx = { servers, log: () => undefined } as unknown as BenchContext;

  it('alternates the order between runs', async () => {
    const r = emptyResults('c', new Map());
    const seen: string[] = [];
    await forEachServer(ctx, r, 'small', 0, async (s) => void seen.push(s.name));
    await forEachServer(ctx, r, 'small', 1, async (s) => void seen.push(s.name));
    expect(seen).toEqual(['capstan', 'OpenSSH', 'rclone', 'rclone', 'OpenSSH', 'capstan']);
  });

  it('records a workload rclone fails on as not applicable, and leaves rclone out of its later runs', async () => {
    const r = emptyResults('c', new Map());
    const seen: string[] = [];
    const step = async (s: BenchServer): Promise<void> => {
      seen.push(s.name);
      if (s.name === 'rclone') throw new Error('sftp to rclone failed (1) in batch [put x]: refused\nmore');
    };
    await forEachServer(ctx, r, 'dirs', 0, step);
    await forEachServer(ctx, r, 'dirs', 1, step);
    expect(seen).toEqual(['capstan', 'OpenSSH', 'rclone', 'OpenSSH', 'capstan']);
    expect(r.notApplicable).toEqual({ dirs: { rclone: 'sftp to rclone failed (1) in batch [put x]: refused' } });
  });

  it('fails the benchmark when capstan or OpenSSH fails', async () => {
    const r = emptyResults('c', new Map());
    await expect(
      forEachServer(ctx, r, 'small', 0, async (s) => {
        if (s.name === 'OpenSSH') throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(r.notApplicable).toEqual({});
  });
});

describe('targets', () => {
  it('says each target in words', () => {
    expect(targetText(TARGETS.putVsOpenSsh)).toBe('≥ 0.8× OpenSSH');
    expect(targetText(TARGETS.getVsRclone)).toBe('≥ 1× rclone');
    expect(targetText(TARGETS.smallFileCpuMs)).toBe('≤ 1.5 CPU-ms');
    expect(targetText(TARGETS.lsSeconds)).toBe('< 1 s');
    expect(targetText(TARGETS.hugePutRssMiB)).toBe('< 200 MiB and flat');
  });

  it('checks ratios with ≥, limits with ≤ or <, and the extra condition', () => {
    expect(checkTarget('putVsOpenSsh', 0.8).verdict).toBe('met');
    expect(checkTarget('putVsOpenSsh', 0.79).verdict).toBe('not met');
    expect(checkTarget('oneMoreEntryMs', 3).verdict).toBe('met');
    expect(checkTarget('oneMoreEntryMs', 3.01).verdict).toBe('not met');
    expect(checkTarget('lsSeconds', 1).verdict).toBe('not met');
    expect(checkTarget('lsSeconds', 0.99).verdict).toBe('met');
    expect(checkTarget('hugePutRssMiB', 150, true).verdict).toBe('met');
    expect(checkTarget('hugePutRssMiB', 150, false).verdict).toBe('not met');
  });

  it('is never met without a figure', () => {
    expect(checkTarget('getVsRclone', undefined)).toEqual({ id: 'getVsRclone', text: '≥ 1× rclone', verdict: 'not measured' });
    expect(checkTarget('s3PutsPerSmallFile', Number.NaN).verdict).toBe('not measured');
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

  it('compares capstan with OpenSSH and rclone and marks each target met or not', () => {
    const r = emptyResults('aes128-gcm@openssh.com', new Map([['capstan', 150]]));
    r.putMBps = { capstan: [80, 90, 85], OpenSSH: [100, 100, 100], rclone: [80, 90, 70] };
    r.getMBps = { capstan: [50], OpenSSH: [100], rclone: [40] };
    r.putCpuPerGiB = { capstan: [9, 7, 8], OpenSSH: [4], rclone: [10] };
    r.putMainCpuPerGiB = { capstan: [3, 2.5, 2] };
    r.putSystemCpuPerGiB = { capstan: [2.4, 2.2, 0.6], OpenSSH: [2.3], rclone: [4.4] };
    r.lsSeconds = { capstan: [0.5] };
    r.oneMoreMs = { capstan: [2, 4, 3], OpenSSH: [1, 1, 1], rclone: [6, 6, 6] };
    r.populateSeconds = { capstan: 40, OpenSSH: 4, rclone: 20 };
    r.rssBig = [{ peakRssMiB: 120, hwmMiB: 125, hwmReset: true, samples: 10 }];
    r.rssHuge = { peakRssMiB: 130, hwmMiB: 131, hwmReset: true, samples: 40 };
    r.dedup = { fileBytes: 1000, firstUploadBytes: 1100, secondUploadBytes: 20 };
    const md = renderReport(r, machine, meta);
    expect(md).toMatch(/^Machine: .*; rclone v1\.60\.1\. capstan's SSH ciphers: ssh2's native crypto binding\.$/m);
    expect(md).toMatch(/^\| workload \| capstan \| OpenSSH \| capstan \/ OpenSSH \| rclone \| capstan \/ rclone \| target \| met\? \|$/m);
    expect(row(md, 'put one 8 MiB file')).toBe(
      '| put one 8 MiB file (MB/s) | 85.0 | 100.0 | 0.85× | 80.0 | 1.06× | ≥ 0.8× OpenSSH; ≥ 1× rclone | met; met |',
    );
    expect(row(md, 'get one 8 MiB file')).toBe(
      '| get one 8 MiB file (MB/s) | 50.0 | 100.0 | 0.50× | 40.0 | 1.25× | ≥ 0.8× OpenSSH; ≥ 1× rclone | not met; met |',
    );
    expect(row(md, 'server CPU per GiB put')).toMatch(/\| 8\.00 \| 4\.00 \| 2\.00× \| 10\.00 \| 0\.80× \| ≤ 8 CPU-s \| met \|$/);
    expect(row(md, "of which capstan's main thread, per GiB put")).toBe(
      "| of which capstan's main thread, per GiB put (CPU-seconds) | 2.50 |  |  |  |  |  |  |",
    );
    expect(row(md, 'of which in the kernel, per GiB put')).toBe(
      '| of which in the kernel, per GiB put (CPU-seconds) | 2.20 | 2.30 | 0.96× | 4.40 | 0.50× |  |  |',
    );
    // Not measured (no get samples): no row.
    expect(md).not.toMatch(/in the kernel, per GiB got/);
    expect(md).not.toMatch(/main thread, per GiB got/);
    expect(md).toMatch(/^- capstan's main-thread CPU-s per GiB put: capstan 3\.00, 2\.50, 2\.00$/m);
    expect(row(md, 'one more entry in a directory of 100 (ms)')).toBe(
      '| one more entry in a directory of 100 (ms) | 3.00 | 1.00 | 3.00× | 6.00 | 0.50× | ≤ 3 ms | met |',
    );
    expect(row(md, 'populate a directory to 100 entries')).toMatch(/\| 40\.0 \| 4\.0 \| 10\.00× \| 20\.0 \| 2\.00× \| {2}\| {2}\|$/);
    expect(row(md, '`ls -l` of 100 entries')).toBe('| `ls -l` of 100 entries (s) | 0.500 | — | — | — | — | < 1 s | met |');
    expect(row(md, 'capstan peak RSS during a 32 MiB put')).toMatch(/\| 131 \| .* \| < 200 MiB and flat \| met \|$/);
    expect(row(md, 'store growth from a second upload')).toMatch(/\| 20 bytes \(2\.000 %\) \| .* \| not met \|$/);
    // Rows of workloads that did not run are left out, and so are their targets.
    expect(md).not.toMatch(/clients each putting/);
    expect(md).toMatch(/^8 of 10 met /m);
    expect(md).toMatch(/^\| `getVsOpenSsh` ≥ 0\.8× OpenSSH \| get one 8 MiB file \(MB\/s\) \| 0\.50× \| not met \|$/m);
    expect(md).toMatch(/^\| `putCpuSecondsPerGiB` ≤ 8 CPU-s \| .* \| 8\.00 \| met \|$/m);
    // The disk's sync latency, and the bound it puts on one client's durable uploads.
    expect(md).toMatch(/durable \(write, fdatasync\) in 1\.25 ms \(median of 200\): .* at most 800 files\/s /);
  });

  it("shows sftp cp for capstan and OpenSSH (rclone n/a) and checks capstan's big copy against its small one", () => {
    const r = emptyResults('c', new Map());
    r.copySmallMs = { capstan: [40, 60, 50], OpenSSH: [20] };
    r.copyBigMs = { capstan: [55, 45, 50], OpenSSH: [900] };
    r.notApplicable['copy'] = { rclone: 'no copy-data' };
    const md = renderReport(r, machine, meta);
    expect(row(md, '`sftp cp` of a 1 MiB file')).toBe(
      '| `sftp cp` of a 1 MiB file on the server (ms; less is better) | 50.0 | 20.0 | 2.50× | n/a: no copy-data |  |  |  |',
    );
    expect(row(md, '`sftp cp` of a 32 MiB file')).toMatch(/\| 50\.0 \| 900\.0 \| 0\.06× \| n\/a: no copy-data \|/);
    expect(row(md, "capstan's `sftp cp` of 32 MiB against 1 MiB")).toMatch(/\| 1\.00× \| .* \| ≤ 2 × the small copy \| met \|$/);
    r.copyBigMs = { capstan: [500] };
    expect(row(renderReport(r, machine, meta), "capstan's `sftp cp`")).toMatch(/\| 10\.00× \| .* \| not met \|$/);
  });

  it('shows the snapshot of both trees, checks their time ratio, and lists every sample', () => {
    const r = emptyResults('c', new Map());
    const tree = (files: number, ms: number[]) => ({
      files,
      directories: files / 1000,
      buildSeconds: files / 1000,
      ms,
      cpuMs: ms.map((m) => m / 2),
      cliMs: [900, 1100],
    });
    r.snapshot = { trees: [tree(10_000, [4, 2, 3]), tree(100_000, [3, 5, 4])] };
    const md = renderReport(r, machine, meta);
    expect(row(md, 'snapshot of a tree of')).toBe(
      '| snapshot of a tree of 10,000 / 100,000 files, in-process, fsync on (ms, median of 3 each; less is better) | 3.00 / 4.00 |  |  |  |  |  |  |',
    );
    expect(row(md, 'CPU per snapshot of 10,000 / 100,000 files')).toMatch(/\| 1\.50 \/ 2\.00 \|/);
    expect(row(md, 'snapshot of 100,000 files against 10,000 (time ratio)')).toMatch(
      /\| 1\.33× \| .* \| ≤ 1\.5 × the small tree \| met \|$/,
    );
    expect(row(md, '`capstan snapshot create` of 10,000 / 100,000 files')).toMatch(/median of 2 each; less is better\) \| 1000 \/ 1000 \|/);
    expect(md).toMatch(/^- snapshot of 100,000 files \(100 directories, built in 100\.0 s\): ms 3\.00, 5\.00, 4\.00; /m);
    expect(md).toMatch(/^1 of 1 met /m);
    r.snapshot.trees[1]!.ms = [9, 9, 9];
    expect(row(renderReport(r, machine, meta), 'snapshot of 100,000 files against')).toMatch(/\| 3\.00× \| .* \| not met \|$/);
    // Not run: no rows, no target.
    expect(renderReport(emptyResults('c', new Map()), machine, meta)).not.toMatch(/snapshot/);
  });

  it('takes the highest run for memory peaks and shows only capstan and rclone there', () => {
    const r = emptyResults('c', new Map());
    r.concurrentMBps = { capstan: [100, 120, 110], OpenSSH: [200, 200, 200], rclone: [150] };
    r.concurrentPeakMiB = { capstan: [200, 300, 250], rclone: [70, 90, 80] };
    r.concurrentAfterMiB = { capstan: [100, 120, 110], rclone: [60] };
    r.concurrentBeforeMiB = { capstan: [80, 115, 105], rclone: [40] };
    const md = renderReport(r, machine, meta);
    expect(row(md, '8 clients each putting 1 MiB (aggregate')).toMatch(
      /\| 110\.0 \| 200\.0 \| 0\.55× \| 150\.0 \| 0\.73× \| ≥ 0\.8× OpenSSH \| not met \|$/,
    );
    expect(row(md, 'server peak RSS during 8 clients')).toMatch(/\| 300 \| {2}\| {2}\| 90 \| 3\.33× \| ≤ 256 MiB \| not met \|$/);
    expect(row(md, 'server RSS right after that run')).toMatch(/\| 120 \| {2}\| {2}\| 60 \| 2\.00× \| ≤ 256 MiB \| met \|$/);
    // What the server held before the burst: no target, the reader's baseline for the two rows above.
    expect(row(md, 'server RSS right before that run')).toMatch(/\| 115 \| {2}\| {2}\| 40 \| 2\.88× \| {2}\| {2}\|$/);
    expect(md).toMatch(/^- server RSS MiB before the concurrent runs: capstan 80, 115, 105; rclone 40$/m);
  });

  it('says why a workload is not applicable to rclone, and leaves the targets against it not measured', () => {
    const r = emptyResults('c', new Map());
    r.getMBps = { capstan: [50], OpenSSH: [100], rclone: [40] };
    r.notApplicable = { transfer: { rclone: 'sftp to rclone failed (1): a|b\nsecond line' } };
    const md = renderReport(r, machine, meta);
    expect(row(md, 'get one 8 MiB file')).toBe(
      '| get one 8 MiB file (MB/s) | 50.0 | 100.0 | 0.50× | n/a: sftp to rclone failed (1): a\\|b second line | — | ≥ 0.8× OpenSSH; ≥ 1× rclone | not met; not measured |',
    );
    expect(md).toMatch(/^- transfer not applicable to rclone: sftp to rclone failed/m);
  });

  it('says when OpenSSH or rclone was skipped', () => {
    const r = emptyResults('c', new Map());
    expect(renderReport(r, machine, { ...meta, openSshSkipped: 'not root' })).toMatch(/OpenSSH side skipped: not root/);
    expect(renderReport(r, machine, { ...meta, rcloneSkipped: '--no-rclone' })).toMatch(/rclone side skipped: --no-rclone/);
  });

  it('lists every target once, with its row, for --json', () => {
    const r = emptyResults('c', new Map());
    r.smallFilesPerSec = { capstan: [100], OpenSSH: [1000], rclone: [500] };
    r.smallFilesCpuMs = { capstan: [5], OpenSSH: [0.3], rclone: [1] };
    const targets = targetResults(tableRows(r, QUICK_SIZES));
    expect(targets).toEqual([
      { id: 'smallFilesVsOpenSsh', text: '≥ 0.5× OpenSSH', value: 0.1, verdict: 'not met', row: 'put 40 files of 16 KiB (files/s)' },
      {
        id: 'smallFileCpuMs',
        text: '≤ 1.5 CPU-ms',
        value: 5,
        verdict: 'not met',
        row: 'server CPU per small file (CPU-ms; less is better)',
      },
    ]);
  });
});

describe('the S3 rows', () => {
  const s3meta: RunMeta = { ...meta, quick: true, runsDone: { transfer: 1, s3: 1 } };

  it("compares with OpenSSH's put and get of the same run when there are some", () => {
    const r = emptyResults('aes128-gcm@openssh.com', new Map());
    r.putMBps = { capstan: [80], OpenSSH: [100] };
    r.getMBps = { capstan: [90], OpenSSH: [200] };
    r.s3 = { fileBytes: 1024 ** 3, putMBps: 40, getMBps: 50 };
    const md = renderReport(r, machine, s3meta);
    expect(row(md, 'put / get 1 GiB, chunks in S3')).toBe(
      '| put / get 1 GiB, chunks in S3 (local Swift) (MB/s) | 40.0 / 50.0 |  | 0.40× / 0.25× |  |  |  |  |',
    );
    // Right after the plain put/get rows and their CPU, before the small files.
    expect(md.indexOf('chunks in S3')).toBeGreaterThan(md.indexOf('server CPU per GiB got'));
    expect(md).toMatch(/^- capstan on S3 \(local Swift\), one run: put 40\.0 MB\/s, get 50\.0 MB\/s$/m);
  });

  it('counts the PUTs per small file until the gateway exited, and checks them against the target', () => {
    const r = emptyResults('c', new Map());
    r.s3 = {
      fileBytes: 8 * 1024 ** 2,
      putMBps: 12.34,
      getMBps: 5,
      smallFiles: { files: 10, fileBytes: 16384, filesPerSec: 20, duringSession: { PUT: 30, GET: 1 }, untilExit: { PUT: 2 } },
    };
    const md = renderReport(r, machine, s3meta);
    expect(row(md, 'put / get 8 MiB, chunks in S3')).toMatch(/\| 12\.3 \/ 5\.0 \| {2}\| — \|/);
    expect(row(md, 'S3 PUT requests per small file')).toMatch(/\(10 files of 16 KiB .*\) \| 3\.20 \| .* \| ≤ 2 PUTs \| not met \|$/);
    expect(md).toMatch(/S3 requests per file during the session: GET 0\.10, PUT 3\.00; after it until the gateway exited: PUT 0\.20$/m);
  });

  it('says skipped with the reason when Swift is missing, and the PUT target is not measured', () => {
    const r = emptyResults('c', new Map());
    r.s3 = { fileBytes: 8 * 1024 ** 2, skipped: 'not installed: python3-swift (with s3api)' };
    const md = renderReport(r, machine, s3meta);
    expect(row(md, 'put / get 8 MiB, chunks in S3')).toBe(
      '| put / get 8 MiB, chunks in S3 (local Swift) (MB/s) | skipped: not installed: python3-swift (with s3api) |  |  |  |  |  |  |',
    );
    expect(row(md, 'S3 PUT requests per small file')).toMatch(/\| ≤ 2 PUTs \| not measured \|$/);
    expect(md).not.toMatch(/capstan on S3/);
    r.s3 = { fileBytes: 8 * 1024 ** 2, skipped: 'Swift did not start: a|b\nc' };
    expect(renderReport(r, machine, s3meta)).toContain('| skipped: Swift did not start: a\\|b c |');
  });

  it('has no row when the workload did not run', () => {
    expect(renderReport(emptyResults('c', new Map()), machine, s3meta)).not.toMatch(/S3/);
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
