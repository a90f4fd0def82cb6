import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import { median, type BenchResults, type BenchSizes, type Samples, type SnapshotTreeResult } from './context.js';
import { GiB, KiB, MiB } from './data.js';
import { peakMiB, type RssWindow } from './rss.js';
import { perFile } from './counting-proxy.js';
import { rcloneVersion, type ServerName } from './servers.js';
import { checkTarget, TARGETS, type Target, type TargetId, type TargetResult } from './targets.js';

/**
 * The markdown report: the machine, one table with a row per workload
 * (capstan, OpenSSH and rclone, capstan's ratio to each, the targets and
 * whether each is met), every target of targets.ts with its figure, the
 * samples behind each median, and how the numbers were taken.
 */

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  openssh: string;
  rclone: string;
  /** How capstan's SSH transport (ssh2) encrypts: its optional native binding, or Node's crypto per packet. */
  sshCrypto: string;
  kernel: string;
  date: string;
}

export interface RunMeta {
  quick: boolean;
  sizes: BenchSizes;
  /** Why OpenSSH did not run, if it did not. */
  openSshSkipped?: string | undefined;
  /** Why rclone did not run, if it did not. */
  rcloneSkipped?: string | undefined;
  fsync: boolean;
  /** Median ms of a 4 KiB append plus fdatasync in the work folder (disk-sync.ts). */
  diskSyncMs: number;
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
    rclone: rcloneVersion() ?? 'rclone not found',
    sshCrypto: ssh2BindingAvailable()
      ? "ssh2's native crypto binding (built by npm install where a compiler is)"
      : "Node's crypto in ssh2 (its optional native binding is not built: npm ci --ignore-scripts, or no compiler)",
    kernel: `${os.type()} ${os.release()}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

/** ssh2 loads its binding if an install script built it; without one it encrypts each packet through Node's crypto. */
function ssh2BindingAvailable(): boolean {
  try {
    const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: boolean };
    return crypto.bindingAvailable === true;
  } catch {
    return false;
  }
}

const C = 'capstan';
const O = 'OpenSSH';
const R = 'rclone';

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

export interface Row {
  name: string;
  capstan: string;
  openssh: string;
  /** capstan / OpenSSH. */
  vsOpenssh: string;
  rclone: string;
  /** capstan / rclone. */
  vsRclone: string;
  targets: TargetResult[];
}

function med(samples: Samples, server: string): number | undefined {
  const values = samples[server];
  return values && values.length > 0 ? median(values) : undefined;
}

function max(samples: Samples, server: string): number | undefined {
  const values = samples[server];
  return values && values.length > 0 ? Math.max(...values) : undefined;
}

/** "n/a: why" for a workload a server could not do, one line with no table breaks. */
function notApplicable(r: BenchResults, workload: string | undefined, server: ServerName): string | undefined {
  const reason = workload === undefined ? undefined : r.notApplicable[workload]?.[server];
  return reason === undefined ? undefined : `n/a: ${oneLine(reason)}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/\|/g, '\\|');
}

const ratioText = (ratio: number | undefined): string => (ratio !== undefined ? `${ratio.toFixed(2)}×` : '—');

interface CompareOptions {
  fmt: (n: number) => string;
  /** The workload in results.notApplicable. */
  workload?: string;
  /** Targets checked against capstan's figure, or against the ratio for ratio targets. */
  targets?: TargetId[];
  /** Which figure of the samples: the median (default) or, for a peak, the highest. */
  pick?: 'median' | 'max';
  /** Servers whose figures are shown (default all three). */
  servers?: ServerName[];
}

/** A row comparing capstan's figure with OpenSSH's and rclone's, and checking `targets`. */
function compareRow(r: BenchResults, name: string, samples: Samples, o: CompareOptions): Row | undefined {
  const pick = o.pick === 'max' ? max : med;
  const shown = o.servers ?? [C, O, R];
  const value = (server: ServerName): number | undefined =>
    shown.includes(server) && notApplicable(r, o.workload, server) === undefined ? pick(samples, server) : undefined;
  const c = value(C);
  if (c === undefined) return undefined;
  const oValue = value(O);
  const rValue = value(R);
  const ratio = (other: number | undefined): number | undefined => (other !== undefined && other !== 0 ? c / other : undefined);
  const cell = (server: ServerName, v: number | undefined): string =>
    notApplicable(r, o.workload, server) ?? (v !== undefined ? o.fmt(v) : shown.includes(server) ? '—' : '');
  const targets = (o.targets ?? []).map((id) => {
    const t: Target = TARGETS[id];
    return checkTarget(id, t.kind === 'ratio' ? ratio(t.of === 'OpenSSH' ? oValue : rValue) : c);
  });
  return {
    name,
    capstan: o.fmt(c),
    openssh: cell(O, oValue),
    vsOpenssh: shown.includes(O) ? ratioText(ratio(oValue)) : '',
    rclone: cell(R, rValue),
    vsRclone: shown.includes(R) ? (notApplicable(r, o.workload, R) ? '—' : ratioText(ratio(rValue))) : '',
    targets,
  };
}

/** A row of capstan's figure alone. */
function capstanRow(name: string, capstan: string, targets: TargetResult[] = []): Row {
  return { name, capstan, openssh: '', vsOpenssh: '', rclone: '', vsRclone: '', targets };
}

/** "Flat": the huge-file peak is within 10 % (or 20 MiB, if larger) of the big-file peak. */
export function isFlat(bigPeak: number, hugePeak: number): boolean {
  return hugePeak <= bigPeak + Math.max(0.1 * bigPeak, 20);
}

/** `sftp cp` of the small and the big file (ms), and capstan's big copy against its small one (a relink: about equal). */
function copyRows(r: BenchResults, sizes: BenchSizes): (Row | undefined)[] {
  const o: CompareOptions = { fmt: fixed(1), workload: 'copy', servers: [C, O] };
  const rows = [
    compareRow(r, `\`sftp cp\` of a ${size(sizes.copySmall)} file on the server (ms; less is better)`, r.copySmallMs, o),
    compareRow(r, `\`sftp cp\` of a ${size(sizes.copyBig)} file on the server (ms; less is better)`, r.copyBigMs, o),
  ];
  const small = med(r.copySmallMs, C);
  const big = med(r.copyBigMs, C);
  if (small !== undefined && big !== undefined) {
    const ratio = big / small;
    rows.push(
      capstanRow(`capstan's \`sftp cp\` of ${size(sizes.copyBig)} against ${size(sizes.copySmall)} (time ratio)`, `${ratio.toFixed(2)}×`, [
        checkTarget('copyBigOverSmall', ratio),
      ]),
    );
  }
  return rows;
}

/**
 * The snapshot workload (capstan only): the median time and CPU of one
 * in-process snapshot of each tree, their ratio (checked: issue 14 wants
 * them about equal), and the whole `capstan snapshot create` command.
 */
function snapshotRows(r: BenchResults): Row[] {
  const trees = r.snapshot?.trees ?? [];
  const [small, big] = trees;
  if (small === undefined || big === undefined || small.ms.length === 0 || big.ms.length === 0) return [];
  const files = `${int(small.files)} / ${int(big.files)} files`;
  const both = (pick: (t: SnapshotTreeResult) => number[], fmt: (n: number) => string): string =>
    `${fmt(median(pick(small)))} / ${fmt(median(pick(big)))}`;
  const runs = `median of ${small.ms.length} each`;
  const rows = [
    capstanRow(
      `snapshot of a tree of ${files}, in-process, fsync on (ms, ${runs}; less is better)`,
      both((t) => t.ms, fixed(2)),
    ),
    capstanRow(
      `CPU per snapshot of ${files} (CPU-ms of the whole process; less is better)`,
      both((t) => t.cpuMs, fixed(2)),
    ),
  ];
  const ratio = median(big.ms) / median(small.ms);
  rows.push(
    capstanRow(`snapshot of ${int(big.files)} files against ${int(small.files)} (time ratio)`, `${ratio.toFixed(2)}×`, [
      checkTarget('snapshotBigOverSmall', ratio),
    ]),
  );
  if (small.cliMs.length > 0 && big.cliMs.length > 0) {
    rows.push(
      capstanRow(
        `\`capstan snapshot create\` of ${files}, the whole command (ms, median of ${small.cliMs.length} each; less is better)`,
        both((t) => t.cliMs, fixed(0)),
      ),
    );
  }
  return rows;
}

export function tableRows(r: BenchResults, sizes: BenchSizes): Row[] {
  const rows: (Row | undefined)[] = [];
  const mbps = fixed(1);
  const big = size(sizes.bigFile);
  rows.push(
    compareRow(r, `put one ${big} file (MB/s)`, r.putMBps, { fmt: mbps, workload: 'transfer', targets: ['putVsOpenSsh', 'putVsRclone'] }),
    compareRow(r, `get one ${big} file (MB/s)`, r.getMBps, { fmt: mbps, workload: 'transfer', targets: ['getVsOpenSsh', 'getVsRclone'] }),
    compareRow(r, 'server CPU per GiB put (CPU-seconds; less is better)', r.putCpuPerGiB, {
      fmt: fixed(2),
      workload: 'transfer',
      targets: ['putCpuSecondsPerGiB'],
    }),
    compareRow(r, 'server CPU per GiB got (CPU-seconds; less is better)', r.getCpuPerGiB, {
      fmt: fixed(2),
      workload: 'transfer',
      targets: ['getCpuSecondsPerGiB'],
    }),
    compareRow(r, 'of which in the kernel, per GiB put (CPU-seconds)', r.putSystemCpuPerGiB, { fmt: fixed(2), workload: 'transfer' }),
    compareRow(r, 'of which in the kernel, per GiB got (CPU-seconds)', r.getSystemCpuPerGiB, { fmt: fixed(2), workload: 'transfer' }),
    compareRow(r, "of which capstan's main thread, per GiB put (CPU-seconds)", r.putMainCpuPerGiB, {
      fmt: fixed(2),
      workload: 'transfer',
      servers: [C],
    }),
    compareRow(r, "of which capstan's main thread, per GiB got (CPU-seconds)", r.getMainCpuPerGiB, {
      fmt: fixed(2),
      workload: 'transfer',
      servers: [C],
    }),
  );
  if (r.s3) rows.push(...s3Rows(r));
  const small = `${int(sizes.smallFiles)} files of ${size(sizes.smallFileSize)}`;
  rows.push(
    compareRow(r, `put ${small} (files/s)`, r.smallFilesPerSec, { fmt: int, workload: 'small', targets: ['smallFilesVsOpenSsh'] }),
    compareRow(r, 'server CPU per small file (CPU-ms; less is better)', r.smallFilesCpuMs, {
      fmt: fixed(2),
      workload: 'small',
      targets: ['smallFileCpuMs'],
    }),
  );
  const clients = `${sizes.clients} clients each putting ${size(sizes.clientFile)}`;
  rows.push(
    compareRow(r, `${clients} (aggregate MB/s)`, r.concurrentMBps, { fmt: mbps, workload: 'concurrent', targets: ['concurrentVsOpenSsh'] }),
    compareRow(r, `server peak RSS during ${clients}, highest of the runs (MiB)`, r.concurrentPeakMiB, {
      fmt: fixed(0),
      workload: 'concurrent',
      targets: ['concurrentPeakRssMiB'],
      pick: 'max',
      servers: [C, R],
    }),
    compareRow(r, 'server RSS right after that run, clients gone, highest of the runs (MiB)', r.concurrentAfterMiB, {
      fmt: fixed(0),
      workload: 'concurrent',
      targets: ['concurrentAfterRssMiB'],
      pick: 'max',
      servers: [C, R],
    }),
    compareRow(r, 'server RSS right before that run, kept from earlier work, highest of the runs (MiB)', r.concurrentBeforeMiB, {
      fmt: fixed(0),
      workload: 'concurrent',
      pick: 'max',
      servers: [C, R],
    }),
  );
  const entries = int(sizes.dirCheckpoints.at(-1) ?? 0);
  const populate = Object.fromEntries(Object.entries(r.populateSeconds).map(([s, v]) => [s, [v]]));
  rows.push(
    compareRow(r, `populate a directory to ${entries} entries (s, 4 sessions at once; less is better)`, populate, {
      fmt: fixed(1),
      workload: 'dirs',
    }),
    compareRow(r, `one more entry in a directory of ${entries} (ms)`, r.oneMoreMs, {
      fmt: fixed(2),
      workload: 'dirs',
      targets: ['oneMoreEntryMs'],
    }),
    compareRow(r, `\`ls -l\` of ${entries} entries (s)`, r.lsSeconds, { fmt: fixed(3), workload: 'dirs', targets: ['lsSeconds'] }),
  );
  if (r.rssBig.length > 0) {
    // The first run's put: the one made before any download or multi-client workload (see WORKLOADS in run.ts).
    const bigPeak = peakMiB(r.rssBig[0]!);
    rows.push(
      capstanRow(`capstan peak RSS during the first ${big} put, after only uploads (MiB)`, fixed(0)(bigPeak), [
        checkTarget('bigPutRssMiB', bigPeak),
      ]),
    );
    if (r.rssHuge) {
      // Flat: the huge put (on a fresh gateway) against the first big put, which follows it.
      const huge = peakMiB(r.rssHuge);
      rows.push(
        capstanRow(
          `capstan peak RSS during a ${size(sizes.hugeFile)} put (MiB; put ran at ${mbps(r.hugePutMBps ?? 0)} MB/s)`,
          fixed(0)(huge),
          [checkTarget('hugePutRssMiB', huge, isFlat(bigPeak, huge))],
        ),
      );
    }
  }
  if (r.dedup) {
    const share = r.dedup.secondUploadBytes / r.dedup.fileBytes;
    rows.push(
      capstanRow(
        `store growth from a second upload of the same ${size(r.dedup.fileBytes)} (first upload: ${int(r.dedup.firstUploadBytes)} bytes)`,
        `${int(r.dedup.secondUploadBytes)} bytes (${(share * 100).toFixed(3)} %)`,
        [checkTarget('dedupPercent', share * 100)],
      ),
    );
  }
  rows.push(...copyRows(r, sizes));
  rows.push(...snapshotRows(r));
  const byWorkload = Object.entries(r.rssByWorkload);
  if (byWorkload.length > 0) {
    rows.push(
      capstanRow('capstan peak RSS while each workload ran, sampled (MiB)', byWorkload.map(([w, m]) => `${w} ${m.toFixed(0)}`).join(', ')),
    );
  }
  for (const point of r.growth) {
    const cell = (server: ServerName): string => {
      const p = point.perServer[server];
      return notApplicable(r, 'dirs', server) ?? (p ? `${int(p.bytesPerAdd)} B, ${p.msPerAdd.toFixed(1)} ms` : '—');
    };
    rows.push({
      name: `one more entry in a directory of ${int(point.entries)} while growing it (bytes stored, time)`,
      capstan: cell(C),
      openssh: cell(O),
      vsOpenssh: '',
      rclone: cell(R),
      vsRclone: '',
      targets: [],
    });
  }
  const conn = (s: string): string => (r.connectMs[s] !== undefined ? (r.connectMs[s]! / 1000).toFixed(3) : '—');
  rows.push({
    name: 'one whole sftp session doing only `pwd`, not part of the times above (s)',
    capstan: conn(C),
    openssh: conn(O),
    vsOpenssh: '',
    rclone: conn(R),
    vsRclone: '',
    targets: [],
  });
  return rows.filter((x): x is Row => x !== undefined);
}

/**
 * capstan only, through its second gateway whose chunks are in S3: the big
 * file (the ratio compares with OpenSSH's put and get of the same file in
 * the same run, on its own disk: what S3 costs against a local disk), and
 * the S3 requests per small file.
 */
function s3Rows(r: BenchResults): Row[] {
  const s3 = r.s3!;
  const name = `put / get ${size(s3.fileBytes)}, chunks in S3 (local Swift) (MB/s)`;
  const putsTarget = (value?: number): TargetResult => checkTarget('s3PutsPerSmallFile', value);
  if (s3.skipped !== undefined || s3.putMBps === undefined || s3.getMBps === undefined) {
    const reason = oneLine(s3.skipped ?? 'not measured');
    return [capstanRow(name, `skipped: ${reason}`), capstanRow('S3 PUT requests per small file', `skipped: ${reason}`, [putsTarget()])];
  }
  const oPut = med(r.putMBps, O);
  const oGet = med(r.getMBps, O);
  const mbps = fixed(1);
  const rows: Row[] = [
    {
      ...capstanRow(name, `${mbps(s3.putMBps)} / ${mbps(s3.getMBps)}`),
      vsOpenssh: oPut !== undefined && oGet !== undefined ? `${(s3.putMBps / oPut).toFixed(2)}× / ${(s3.getMBps / oGet).toFixed(2)}×` : '—',
    },
  ];
  const small = s3.smallFiles;
  if (small) {
    const total = (small.duringSession['PUT'] ?? 0) + (small.untilExit['PUT'] ?? 0);
    const perFileValue = total / small.files;
    rows.push(
      capstanRow(
        `S3 PUT requests per small file (${int(small.files)} files of ${size(small.fileBytes)} in one session, counted at the wire, until the gateway exited)`,
        perFileValue.toFixed(2),
        [putsTarget(perFileValue)],
      ),
    );
  }
  return rows;
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

/** Every checked target of the table, in table order, each once. */
export function targetResults(rows: Row[]): (TargetResult & { row: string })[] {
  return rows.flatMap((row) => row.targets.map((t) => ({ ...t, row: row.name })));
}

function targetValue(t: TargetResult): string {
  if (t.value === undefined) return '—';
  if (t.text.startsWith('≥')) return `${t.value.toFixed(2)}×`;
  return Math.abs(t.value) >= 100 ? t.value.toFixed(0) : t.value.toFixed(2);
}

export function renderReport(r: BenchResults, m: Machine, meta: RunMeta): string {
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ');
  const lines: string[] = [
    "# Benchmarks: capstan next to OpenSSH's sftp server and rclone serve sftp",
    '',
    `Generated by \`npm run bench${meta.quick ? ' -- --quick' : ''}\` on ${m.date}; bench/README.md explains each row.`,
    '',
  ];
  if (meta.quick) lines.push('**Quick smoke run: the sizes are too small for these numbers or verdicts to mean anything.**', '');
  if (meta.openSshSkipped)
    lines.push(`**OpenSSH side skipped: ${meta.openSshSkipped}.** Ratios and targets against it are not measured.`, '');
  if (meta.rcloneSkipped) lines.push(`**rclone side skipped: ${meta.rcloneSkipped}.** Ratios and targets against it are not measured.`, '');
  lines.push(
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB memory, ${m.kernel}; Node ${m.node}; ${m.openssh}; ${m.rclone}. capstan's SSH ciphers: ${m.sshCrypto}.`,
    `Load average (1, 5, 15 min) at start ${load(meta.loadStart)}, at end ${load(meta.loadEnd)}. Elapsed ${(meta.elapsedSeconds / 60).toFixed(1)} min.`,
    `Client: OpenSSH sftp, cipher ${r.cipher}, for every server. capstan: embedded fs store, [storage] fs.fsync = ${meta.fsync}; OpenSSH: sshd with internal-sftp, chrooted, as user nobody; rclone: \`rclone serve sftp\` over a crypt remote on a local folder, --vfs-cache-mode writes, --vfs-write-back 0s (a put returns once encrypted into the remote), gets read from the remote.`,
    `Medians over runs alternated between the servers; runs per workload: ${runsText(meta)}.`,
    `The work folder's disk makes a 4 KiB append durable (write, fdatasync) in ${meta.diskSyncMs.toFixed(2)} ms (median of 200): a client putting files one after another gets at most ${int(1000 / meta.diskSyncMs)} files/s from a server that acknowledges each upload once it is durable, as capstan does; OpenSSH's sftp server does not sync.`,
    '',
    '| workload | capstan | OpenSSH | capstan / OpenSSH | rclone | capstan / rclone | target | met? |',
    '|---|---:|---:|---:|---:|---:|---|---|',
  );
  const rows = tableRows(r, meta.sizes);
  for (const row of rows) {
    const targets = row.targets.map((t) => t.text).join('; ');
    const verdicts = row.targets.map((t) => t.verdict).join('; ');
    lines.push(
      `| ${row.name} | ${row.capstan} | ${row.openssh} | ${row.vsOpenssh} | ${row.rclone} | ${row.vsRclone} | ${targets} | ${verdicts} |`,
    );
  }
  if (meta.skippedWorkloads.length > 0) lines.push('', `Not run (--only): ${meta.skippedWorkloads.join(', ')}.`);
  const targets = targetResults(rows);
  const met = targets.filter((t) => t.verdict === 'met').length;
  lines.push(
    '',
    '## Targets',
    '',
    `${met} of ${targets.length} met (targets live in bench/targets.ts; a ratio target compares medians of capstan and the other server).`,
    '',
    '| target | row | figure | met? |',
    '|---|---|---:|---|',
    ...targets.map((t) => `| \`${t.id}\` ${t.text} | ${t.row} | ${targetValue(t)} | ${t.verdict} |`),
  );
  lines.push('', '## Samples', '');
  const mbps = fixed(1);
  for (const l of [
    samplesLine('put MB/s', r.putMBps, mbps),
    samplesLine('get MB/s', r.getMBps, mbps),
    samplesLine('server CPU-s per GiB put', r.putCpuPerGiB, fixed(2)),
    samplesLine('server CPU-s per GiB got', r.getCpuPerGiB, fixed(2)),
    samplesLine('server kernel CPU-s per GiB put', r.putSystemCpuPerGiB, fixed(2)),
    samplesLine('server kernel CPU-s per GiB got', r.getSystemCpuPerGiB, fixed(2)),
    samplesLine("capstan's main-thread CPU-s per GiB put", r.putMainCpuPerGiB, fixed(2)),
    samplesLine("capstan's main-thread CPU-s per GiB got", r.getMainCpuPerGiB, fixed(2)),
    samplesLine('small files/s', r.smallFilesPerSec, fixed(0)),
    samplesLine('server CPU-ms per small file', r.smallFilesCpuMs, fixed(2)),
    samplesLine('concurrent aggregate MB/s', r.concurrentMBps, mbps),
    samplesLine('server peak RSS MiB during the concurrent runs', r.concurrentPeakMiB, fixed(0)),
    samplesLine('server RSS MiB after the concurrent runs', r.concurrentAfterMiB, fixed(0)),
    samplesLine('server RSS MiB before the concurrent runs', r.concurrentBeforeMiB, fixed(0)),
    samplesLine('one more entry in the full directory, ms', r.oneMoreMs, fixed(2)),
    samplesLine('ls -l s', r.lsSeconds, fixed(3)),
    samplesLine(`sftp cp of ${size(meta.sizes.copySmall)}, ms`, r.copySmallMs, fixed(1)),
    samplesLine(`sftp cp of ${size(meta.sizes.copyBig)}, ms`, r.copyBigMs, fixed(1)),
  ]) {
    if (l) lines.push(l);
  }
  for (const t of r.snapshot?.trees ?? []) {
    lines.push(
      `- snapshot of ${int(t.files)} files (${t.directories} ${t.directories === 1 ? 'directory' : 'directories'}, built in ${t.buildSeconds.toFixed(1)} s): ms ${t.ms.map(fixed(2)).join(', ')}; CPU-ms ${t.cpuMs.map(fixed(2)).join(', ')}; \`capstan snapshot create\` ms ${t.cliMs.map(fixed(0)).join(', ')}`,
    );
  }
  const rssText = (w: RssWindow): string =>
    `sampled ${w.peakRssMiB.toFixed(0)}, VmHWM ${w.hwmMiB.toFixed(0)}${w.hwmReset ? '' : ' (lifetime: reset refused)'}`;
  if (r.rssBig.length > 0) lines.push(`- capstan RSS MiB during the ${size(meta.sizes.bigFile)} puts: ${r.rssBig.map(rssText).join('; ')}`);
  if (r.rssHuge) lines.push(`- capstan RSS MiB during the ${size(meta.sizes.hugeFile)} put: ${rssText(r.rssHuge)}`);
  if (r.s3?.putMBps !== undefined)
    lines.push(`- capstan on S3 (local Swift), one run: put ${mbps(r.s3.putMBps)} MB/s, get ${mbps(r.s3.getMBps ?? 0)} MB/s`);
  const small = r.s3?.smallFiles;
  if (small) {
    lines.push(
      `- capstan on S3, ${small.files} small files in one session: ${small.filesPerSec.toFixed(0)} files/s; S3 requests per file during the session: ${perFile(small.duringSession, small.files)}; after it until the gateway exited: ${perFile(small.untilExit, small.files)}`,
    );
  }
  const notApplicableLines = Object.entries(r.notApplicable).flatMap(([w, servers]) =>
    Object.entries(servers).map(([s, reason]) => `- ${w} not applicable to ${s}: ${oneLine(reason)}`),
  );
  lines.push(...notApplicableLines);
  const setup = Object.entries(r.setupSeconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`);
  if (setup.length > 0) lines.push(`- untimed setup: ${setup.join('; ')}`);
  lines.push('');
  return lines.join('\n');
}
