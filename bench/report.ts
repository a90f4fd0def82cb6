import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { median, type BenchResults, type BenchSizes, type Samples } from './context.js';
import { GiB, KiB, MiB } from './data.js';
import type { RssWindow } from './rss.js';

/**
 * The markdown report: the machine, one table with a row per workload
 * (capstan, OpenSSH, their ratio, the target and whether it is met), the
 * samples behind each median, and how the numbers were taken.
 */

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  openssh: string;
  kernel: string;
  date: string;
}

export interface RunMeta {
  quick: boolean;
  sizes: BenchSizes;
  /** Why OpenSSH did not run, if it did not. */
  openSshSkipped?: string | undefined;
  fsync: boolean;
  elapsedSeconds: number;
  loadStart: number[];
  loadEnd: number[];
  workDir: string;
  skippedWorkloads: string[];
  budgetSeconds: number;
  runsDone: Record<string, number>;
  runsSkipped: Record<string, number>;
}

export function machineInfo(): Machine {
  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: os.totalmem() / GiB,
    node: process.version,
    openssh: (ssh.stderr || ssh.stdout || 'not found').trim(),
    kernel: `${os.type()} ${os.release()}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

const C = 'capstan';
const O = 'OpenSSH';

function size(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fixed =
  (digits: number) =>
  (n: number): string =>
    n.toFixed(digits);

type Verdict = 'met' | 'not met' | 'not measured' | '';

interface Row {
  name: string;
  capstan: string;
  openssh: string;
  ratio: string;
  target: string;
  verdict: Verdict;
}

function med(samples: Samples, server: string): number | undefined {
  const values = samples[server];
  return values && values.length > 0 ? median(values) : undefined;
}

/** A row comparing medians, with a "capstan ≥ factor × OpenSSH" target when `minRatio` is given. */
function ratioRow(name: string, samples: Samples, fmt: (n: number) => string, minRatio?: number): Row | undefined {
  const c = med(samples, C);
  if (c === undefined) return undefined;
  const o = med(samples, O);
  const ratio = o !== undefined ? c / o : undefined;
  const target = minRatio !== undefined ? `≥ ${minRatio}× OpenSSH` : '';
  const verdict: Verdict = minRatio === undefined ? '' : ratio === undefined ? 'not measured' : ratio >= minRatio ? 'met' : 'not met';
  return {
    name,
    capstan: fmt(c),
    openssh: o !== undefined ? fmt(o) : '—',
    ratio: ratio !== undefined ? `${ratio.toFixed(2)}×` : '—',
    target,
    verdict,
  };
}

/** A window's peak: the kernel's VmHWM when it could be reset for the window (it sees spikes between samples), else the sampled peak. */
export function peakMiB(w: RssWindow): number {
  return w.hwmReset ? Math.max(w.hwmMiB, w.peakRssMiB) : w.peakRssMiB;
}

const RSS_LIMIT_MIB = 200;

/** "Flat": the huge-file peak is within 10 % (or 20 MiB, if larger) of the big-file peak. */
export function isFlat(bigPeak: number, hugePeak: number): boolean {
  return hugePeak <= bigPeak + Math.max(0.1 * bigPeak, 20);
}

export function tableRows(r: BenchResults, sizes: BenchSizes): Row[] {
  const rows: (Row | undefined)[] = [];
  const mbps = fixed(1);
  rows.push(ratioRow(`put one ${size(sizes.bigFile)} file (MB/s)`, r.putMBps, mbps, 0.8));
  rows.push(ratioRow(`get one ${size(sizes.bigFile)} file (MB/s)`, r.getMBps, mbps, 0.8));
  rows.push(ratioRow('server CPU per GiB put (CPU-seconds; less is better)', r.putCpuPerGiB, fixed(2)));
  rows.push(ratioRow('server CPU per GiB got (CPU-seconds; less is better)', r.getCpuPerGiB, fixed(2)));
  if (r.s3) rows.push(s3Row(r));
  rows.push(ratioRow(`put ${int(sizes.smallFiles)} files of ${size(sizes.smallFileSize)} (files/s)`, r.smallFilesPerSec, int, 0.5));
  rows.push(ratioRow('server CPU per small file (CPU-ms; less is better)', r.smallFilesCpuMs, fixed(2)));
  rows.push(ratioRow(`${sizes.clients} clients each putting ${size(sizes.clientFile)} (aggregate MB/s)`, r.concurrentMBps, mbps));
  const ls = ratioRow(`\`ls -l\` of ${int(sizes.dirCheckpoints.at(-1) ?? 0)} entries (s)`, r.lsSeconds, fixed(3));
  if (ls) {
    const c = med(r.lsSeconds, C)!;
    rows.push({ ...ls, target: '< 1 s', verdict: c < 1 ? 'met' : 'not met' });
  }
  if (r.rssBig.length > 0) {
    // The first run's put: the one made before any download or multi-client workload (see WORKLOADS in run.ts).
    const big = peakMiB(r.rssBig[0]!);
    rows.push({
      name: `capstan peak RSS during the first ${size(sizes.bigFile)} put, after only uploads (MiB)`,
      capstan: fixed(0)(big),
      openssh: '',
      ratio: '',
      target: `< ${RSS_LIMIT_MIB} MiB`,
      verdict: big < RSS_LIMIT_MIB ? 'met' : 'not met',
    });
    if (r.rssHuge) {
      const huge = peakMiB(r.rssHuge);
      // Flat: the huge put (on a fresh gateway) against the first big put, which follows it.
      const ok = huge < RSS_LIMIT_MIB && isFlat(big, huge);
      rows.push({
        name: `capstan peak RSS during a ${size(sizes.hugeFile)} put (MiB; put ran at ${mbps(r.hugePutMBps ?? 0)} MB/s)`,
        capstan: fixed(0)(huge),
        openssh: '',
        ratio: '',
        target: `< ${RSS_LIMIT_MIB} MiB and flat`,
        verdict: ok ? 'met' : 'not met',
      });
    }
  }
  if (r.dedup) {
    const share = r.dedup.secondUploadBytes / r.dedup.fileBytes;
    rows.push({
      name: `store growth from a second upload of the same ${size(r.dedup.fileBytes)} (first upload: ${int(r.dedup.firstUploadBytes)} bytes)`,
      capstan: `${int(r.dedup.secondUploadBytes)} bytes (${(share * 100).toFixed(3)} %)`,
      openssh: '',
      ratio: '',
      target: '< 1 % of the file',
      verdict: share < 0.01 ? 'met' : 'not met',
    });
  }
  const byWorkload = Object.entries(r.rssByWorkload);
  if (byWorkload.length > 0) {
    rows.push({
      name: 'capstan peak RSS while each workload ran, sampled (MiB)',
      capstan: byWorkload.map(([w, m]) => `${w} ${m.toFixed(0)}`).join(', '),
      openssh: '',
      ratio: '',
      target: '',
      verdict: '',
    });
  }
  for (const point of r.growth) {
    const cell = (server: string): string => {
      const p = point.perServer[server];
      return p ? `${int(p.bytesPerAdd)} B, ${p.msPerAdd.toFixed(1)} ms` : '—';
    };
    rows.push({
      name: `one more entry in a directory of ${int(point.entries)} (bytes stored, time)`,
      capstan: cell(C),
      openssh: cell(O),
      ratio: '',
      target: '',
      verdict: '',
    });
  }
  const conn = (s: string): string => (r.connectMs[s] !== undefined ? (r.connectMs[s]! / 1000).toFixed(3) : '—');
  rows.push({
    name: 'one whole sftp session doing only `pwd`, not part of the times above (s)',
    capstan: conn(C),
    openssh: conn(O),
    ratio: '',
    target: '',
    verdict: '',
  });
  return rows.filter((x): x is Row => x !== undefined);
}

/**
 * capstan only, through its second gateway whose chunks are in S3; the
 * ratio compares with OpenSSH's put and get of the same file in the same
 * run (its own disk, so it says what S3 costs against a local disk).
 */
function s3Row(r: BenchResults): Row {
  const s3 = r.s3!;
  const name = `put / get ${size(s3.fileBytes)}, chunks in S3 (local Swift) (MB/s)`;
  if (s3.skipped !== undefined || s3.putMBps === undefined || s3.getMBps === undefined) {
    // A reason is one line of free text: no table breaks in it.
    const reason = (s3.skipped ?? 'not measured').replace(/\s+/g, ' ').replace(/\|/g, '\\|');
    return { name, capstan: `skipped: ${reason}`, openssh: '', ratio: '—', target: '', verdict: '' };
  }
  const oPut = med(r.putMBps, O);
  const oGet = med(r.getMBps, O);
  const mbps = fixed(1);
  const ratio = oPut !== undefined && oGet !== undefined ? `${(s3.putMBps / oPut).toFixed(2)}× / ${(s3.getMBps / oGet).toFixed(2)}×` : '—';
  return { name, capstan: `${mbps(s3.putMBps)} / ${mbps(s3.getMBps)}`, openssh: '', ratio, target: '', verdict: '' };
}

function samplesLine(name: string, samples: Samples, fmt: (n: number) => string): string | undefined {
  const parts = Object.entries(samples).map(([server, values]) => `${server} ${values.map(fmt).join(', ')}`);
  return parts.length > 0 ? `- ${name}: ${parts.join('; ')}` : undefined;
}

function runsText(meta: RunMeta): string {
  const parts = Object.entries(meta.runsDone).map(([w, n]) => {
    const skipped = meta.runsSkipped[w] ?? 0;
    return `${w} ${n}${skipped > 0 ? ` (${skipped} left out for the ${meta.budgetSeconds} s budget)` : ''}`;
  });
  return parts.length > 0 ? parts.join(', ') : 'none';
}

export function renderReport(r: BenchResults, m: Machine, meta: RunMeta): string {
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  const lines: string[] = [
    "# Benchmarks: capstan next to OpenSSH's sftp server",
    '',
    `Generated by \`npm run bench${meta.quick ? ' -- --quick' : ''}\` on ${m.date}; bench/README.md explains each row.`,
    '',
  ];
  if (meta.quick) lines.push('**Quick smoke run: the sizes are too small for these numbers or verdicts to mean anything.**', '');
  if (meta.openSshSkipped) lines.push(`**OpenSSH side skipped: ${meta.openSshSkipped}.** Ratios and ratio targets are not measured.`, '');
  lines.push(
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB memory, ${m.kernel}; Node ${m.node}; ${m.openssh}.`,
    `Load average (1, 5, 15 min) at start ${load(meta.loadStart)}, at end ${load(meta.loadEnd)}. Elapsed ${(meta.elapsedSeconds / 60).toFixed(1)} min.`,
    `Client: OpenSSH sftp, cipher ${r.cipher}, for both servers. capstan: embedded fs store, [storage] fs.fsync = ${meta.fsync}; OpenSSH: sshd with internal-sftp, chrooted, as user nobody.`,
    `Medians over runs alternated between the servers; runs per workload: ${runsText(meta)}.`,
    '',
    '| workload | capstan | OpenSSH | capstan / OpenSSH | target | met? |',
    '|---|---:|---:|---:|---|---|',
  );
  for (const row of tableRows(r, meta.sizes)) {
    lines.push(`| ${row.name} | ${row.capstan} | ${row.openssh} | ${row.ratio} | ${row.target} | ${row.verdict} |`);
  }
  if (meta.skippedWorkloads.length > 0) lines.push('', `Not run (--only): ${meta.skippedWorkloads.join(', ')}.`);
  lines.push('', '## Samples', '');
  const mbps = fixed(1);
  for (const l of [
    samplesLine('put MB/s', r.putMBps, mbps),
    samplesLine('get MB/s', r.getMBps, mbps),
    samplesLine('server CPU-s per GiB put', r.putCpuPerGiB, fixed(2)),
    samplesLine('server CPU-s per GiB got', r.getCpuPerGiB, fixed(2)),
    samplesLine('small files/s', r.smallFilesPerSec, fixed(0)),
    samplesLine('server CPU-ms per small file', r.smallFilesCpuMs, fixed(2)),
    samplesLine('concurrent aggregate MB/s', r.concurrentMBps, mbps),
    samplesLine('ls -l s', r.lsSeconds, fixed(3)),
  ]) {
    if (l) lines.push(l);
  }
  const rssText = (w: RssWindow): string =>
    `sampled ${w.peakRssMiB.toFixed(0)}, VmHWM ${w.hwmMiB.toFixed(0)}${w.hwmReset ? '' : ' (lifetime: reset refused)'}`;
  if (r.rssBig.length > 0) lines.push(`- capstan RSS MiB during the ${size(meta.sizes.bigFile)} puts: ${r.rssBig.map(rssText).join('; ')}`);
  if (r.rssHuge) lines.push(`- capstan RSS MiB during the ${size(meta.sizes.hugeFile)} put: ${rssText(r.rssHuge)}`);
  if (r.s3?.putMBps !== undefined)
    lines.push(`- capstan on S3 (local Swift), one run: put ${mbps(r.s3.putMBps)} MB/s, get ${mbps(r.s3.getMBps ?? 0)} MB/s`);
  const setup = Object.entries(r.setupSeconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`);
  if (setup.length > 0) lines.push(`- untimed setup: ${setup.join('; ')}`);
  lines.push('');
  return lines.join('\n');
}
