/**
 * `npm run bench`: capstan next to OpenSSH's own sftp server and rclone's
 * `serve sftp` over a crypt remote, all on loopback, all driven by the same
 * OpenSSH `sftp` client with the same cipher; writes a markdown table to
 * docs/benchmarks.md and prints it. bench/README.md describes every row;
 * `--help` lists the options; bench/targets.ts holds every target.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { emptyResults, FULL_SIZES, measureConnect, QUICK_SIZES, type BenchContext, type BenchSizes } from './context.js';
import { copyWorkload } from './copy.js';
import { snapshotWorkload } from './snapshot.js';
import { summariseProfileFile } from './cpu-profile.js';
import { MiB } from './data.js';
import { directoryWorkload, smallFilesWorkload } from './directories.js';
import { ProcessRegistry, freePort } from './procs.js';
import { REPO } from './repo.js';
import { diskSyncMs } from './disk-sync.js';
import { machineInfo, renderReport, tableRows, targetResults, type RunMeta } from './report.js';
import { ProcRssSampler, RssTracker } from './rss.js';
import {
  chrootProblem,
  openSshUnavailable,
  rcloneUnavailable,
  sameFilesystem,
  startCapstan,
  startOpenSsh,
  startEventReceiver,
  startRclone,
  type BenchServer,
  type EventReceiver,
} from './servers.js';
import { pickCipher, type SftpClient } from './sftp.js';
import { s3Workload } from './s3-gateway.js';
import { runScheduled, type Workload } from './schedule.js';
import { bigFileWorkload, concurrentWorkload, hugeFileWorkload } from './transfer.js';

/**
 * Run order (each workload's first run, then the extra runs). The memory
 * checks come first, on a gateway that has only done uploads: a process keeps
 * the high-water mark of its heap (glibc does not hand freed memory in the
 * middle of its heap back), so after a download or the 8-client burst every
 * later reading measures that burst, not the upload. Those are reported as
 * they are, per workload, in their own row.
 */
export const WORKLOADS = ['huge', 'transfer', 'small', 'concurrent', 'dirs', 's3', 'copy', 'snapshot'] as const;
type WorkloadName = (typeof WORKLOADS)[number];

/** Default time budget of a full run: extra runs stop being added after this (the goal is 10-12 min on 2 cores). */
const DEFAULT_BUDGET_SECONDS = 600;

/**
 * Where scratch folders go when --work-dir is not given. sshd's ChrootDirectory
 * needs every path component root-owned and not group/world-writable, so a
 * checkout under /tmp (mode 1777: CI clones land there) cannot hold the chroot;
 * then a root-owned folder under /var/lib, on the system disk, is used instead.
 */
const FALLBACK_WORK_PARENT = '/var/lib/capstan-bench';

const HELP = `npm run bench -- [options]     (or: node dist-bench/bench/run.js [options])

  --quick            one run, tiny sizes (a smoke test; numbers mean nothing)
  --runs N           runs per server per workload (default 3; --quick: 1); runs after the
                     first are added only while they fit in the budget
  --budget SECONDS   time budget for the extra runs (default ${DEFAULT_BUDGET_SECONDS}; 0: no limit)
  --out FILE         where the markdown goes (default docs/benchmarks.md; --quick: nowhere); "-" for nowhere
  --json FILE        also write the raw results as JSON
  --only LIST        comma-separated subset of: ${WORKLOADS.join(', ')}
  --big-mib N        size of the put/get file, also through S3 (default 1024; --quick: 8)
  --huge-mib N       size of the file of the memory check (default 4096; --quick: 32)
  --copy-mib N       size of the big file of the copy workload (default 1024; --quick: 32)
  --snapshot-files N files in the bigger tree of the snapshot workload, the other has a tenth
                     (default 100000; --quick: 2000)
  --capstan-only     start neither OpenSSH nor rclone (no ratios)
  --no-rclone        do not start rclone serve sftp (no capstan / rclone ratios)
  --no-fsync         run capstan with [storage] fs.fsync = false
  --events           run capstan with [events] on: a webhook to a receiver on loopback in this process (2xx)
  --checksums LIST   run capstan with [storage] checksums = LIST (e.g. sha256,md5,sha1; default: the config default)
  --cpu-prof DIR     run the gateway under node --cpu-prof, write the profile to DIR and summarise it
  --work-dir DIR     parent of the scratch folder (default <repo>/.bench-tmp, or ${FALLBACK_WORK_PARENT} when the
                     repository sits below a folder sshd's chroot refuses, such as /tmp; must be root-owned 0755 up to /)
  --keep             keep the scratch folder (servers' stores, logs) afterwards
`;

export interface BenchOptions {
  quick: boolean;
  sizes: BenchSizes;
  out?: string | undefined;
  json?: string | undefined;
  only: WorkloadName[];
  budgetSeconds: number;
  capstanOnly: boolean;
  rclone: boolean;
  fsync: boolean;
  events: boolean;
  /** [storage] checksums for the capstan gateway; undefined: the config default. */
  checksums?: string | undefined;
  cpuProfDir?: string | undefined;
  workParent: string;
  keep: boolean;
}

function defaultWorkParent(): string {
  return chrootProblem(REPO) === undefined ? path.join(REPO, '.bench-tmp') : FALLBACK_WORK_PARENT;
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      runs: { type: 'string' },
      budget: { type: 'string' },
      'big-mib': { type: 'string' },
      'huge-mib': { type: 'string' },
      'copy-mib': { type: 'string' },
      'snapshot-files': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'string' },
      only: { type: 'string' },
      'capstan-only': { type: 'boolean' },
      'no-rclone': { type: 'boolean' },
      'no-fsync': { type: 'boolean' },
      events: { type: 'boolean' },
      checksums: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'work-dir': { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const sizes = { ...(quick ? QUICK_SIZES : FULL_SIZES) };
  if (values.runs !== undefined) {
    sizes.runs = Number(values.runs);
    if (!Number.isInteger(sizes.runs) || sizes.runs < 1 || sizes.runs > 20) throw new Error('--runs: an integer from 1 to 20');
  }
  for (const [flag, key] of [
    ['big-mib', 'bigFile'],
    ['huge-mib', 'hugeFile'],
    ['copy-mib', 'copyBig'],
  ] as const) {
    const value = values[flag];
    if (value === undefined) continue;
    const mib = Number(value);
    if (!Number.isInteger(mib) || mib < 1 || mib > 64 * 1024) throw new Error(`--${flag}: an integer from 1 to 65536`);
    sizes[key] = mib * MiB;
  }
  if (values['snapshot-files'] !== undefined) {
    const files = Number(values['snapshot-files']);
    if (!Number.isInteger(files) || files < 10 || files > 1_000_000) throw new Error('--snapshot-files: an integer from 10 to 1000000');
    sizes.snapshotFiles = files;
  }
  const budgetSeconds = values.budget !== undefined ? Number(values.budget) : DEFAULT_BUDGET_SECONDS;
  if (!Number.isFinite(budgetSeconds) || budgetSeconds < 0) throw new Error('--budget: a number of seconds, 0 for no limit');
  const only = (values.only ?? WORKLOADS.join(','))
    .split(',')
    .map((w) => w.trim())
    .filter((w) => w !== '');
  for (const w of only)
    if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`--only: unknown workload "${w}" (known: ${WORKLOADS.join(', ')})`);
  const out = values.out ?? (quick ? undefined : path.join(REPO, 'docs/benchmarks.md'));
  return {
    quick,
    sizes,
    out: out === '-' ? undefined : out,
    json: values.json,
    only: only as WorkloadName[],
    budgetSeconds,
    capstanOnly: values['capstan-only'] === true,
    rclone: values['no-rclone'] !== true,
    fsync: values['no-fsync'] !== true,
    events: values.events === true,
    checksums: values.checksums,
    cpuProfDir: values['cpu-prof'] !== undefined ? path.resolve(values['cpu-prof']) : undefined,
    workParent: path.resolve(values['work-dir'] ?? defaultWorkParent()),
    keep: values.keep === true,
  };
}

/** Runs the whole benchmark; returns the markdown. Every process it starts is stopped before it returns or throws. */
export async function runBench(o: BenchOptions, registry: ProcessRegistry, log: (line: string) => void): Promise<string> {
  const t0 = performance.now();
  const loadStart = os.loadavg();
  if (!existsSync(path.join(REPO, 'dist/cli/main.js'))) throw new Error('dist/cli/main.js is missing: build first (npm run build)');

  // sshd's ChrootDirectory rule: root-owned and 0755 all the way down. mkdtemp makes 0700, which also passes.
  await mkdir(o.workParent, { recursive: true, mode: 0o755 });
  const workDir = await mkdtemp(path.join(o.workParent, 'run-'));
  await chmod(workDir, 0o755);
  const dataDir = path.join(workDir, 'data');
  await mkdir(dataDir);
  const servers: BenchServer[] = [];
  let receiver: EventReceiver | undefined;
  try {
    // Before any server runs: the disk's own sync latency, the bound on one client's durable uploads per second.
    const diskSync = diskSyncMs(workDir);
    log(`disk: a 4 KiB append made durable in ${diskSync.toFixed(2)} ms (median of 200)`);
    const openSshSkipped = o.capstanOnly ? '--capstan-only' : (openSshUnavailable() ?? chrootProblem(workDir));
    const keyFile = path.join(workDir, 'id_ed25519');
    const keygen = await registry.run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'capstan-bench', '-f', keyFile]);
    if (keygen.code !== 0) throw new Error(`ssh-keygen failed: ${keygen.stderr}`);

    log(`starting capstan${o.cpuProfDir ? ' (under --cpu-prof)' : ''} in ${workDir}`);
    const nodeFlags = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
    if (o.cpuProfDir) await mkdir(o.cpuProfDir, { recursive: true });
    if (o.events) {
      receiver = await startEventReceiver();
      log(`capstan events: webhook to ${receiver.url}`);
    }
    const capstan = await startCapstan({
      registry,
      repo: REPO,
      workDir,
      publicKeyFile: `${keyFile}.pub`,
      port: await freePort(),
      nodeFlags,
      fsync: o.fsync,
      ...(receiver !== undefined ? { eventsWebhook: receiver.url } : {}),
      checksums: o.checksums,
    });
    servers.push(capstan);
    if (openSshSkipped) {
      log(`OpenSSH side skipped: ${openSshSkipped}`);
    } else {
      log('starting OpenSSH sshd');
      const openssh = await startOpenSsh({ registry, workDir, publicKeyFile: `${keyFile}.pub`, port: await freePort() });
      servers.push(openssh);
      if (!sameFilesystem(capstan.storeDir, openssh.storeDir))
        throw new Error('capstan store and OpenSSH chroot are on different filesystems');
    }
    const rcloneSkipped = o.capstanOnly ? '--capstan-only' : !o.rclone ? '--no-rclone' : rcloneUnavailable();
    if (rcloneSkipped) {
      log(`rclone side skipped: ${rcloneSkipped}`);
    } else {
      log('starting rclone serve sftp (crypt remote, VFS cache mode writes)');
      const rclone = await startRclone({ registry, workDir, publicKeyFile: `${keyFile}.pub`, port: await freePort() });
      servers.push(rclone);
      if (!sameFilesystem(capstan.storeDir, rclone.storeDir))
        throw new Error('capstan store and rclone remote are on different filesystems');
    }

    const client: SftpClient = { registry, keyFile, batchDir: workDir, cipher: '' };
    const cipher = await pickCipher(client, servers);
    log(`cipher ${cipher}`);
    const connectMs = new Map<string, number>();
    for (const s of servers) connectMs.set(s.name, await measureConnect({ client }, s, o.sizes.connectSamples));
    const capstanRss = new ProcRssSampler(capstan.pid);
    const ctx: BenchContext = { registry, client, servers, capstan, capstanRss, sizes: o.sizes, dataDir, connectMs, log };
    const results = emptyResults(cipher, connectMs);

    const all: Record<WorkloadName, () => Workload> = {
      transfer: () => bigFileWorkload(ctx, results, true),
      huge: () => hugeFileWorkload(ctx, results),
      small: () => smallFilesWorkload(ctx, results),
      concurrent: () => concurrentWorkload(ctx, results),
      dirs: () => directoryWorkload(ctx, results),
      s3: () => s3Workload(ctx, results, { repo: REPO, workDir }),
      copy: () => copyWorkload(ctx, results),
      snapshot: () => snapshotWorkload(ctx, results, { repo: REPO, workDir }),
    };
    const workloads = WORKLOADS.filter((w) => o.only.includes(w)).map((w) => all[w]());
    const tracker = new RssTracker(capstan.pid);
    tracker.start();
    let schedule: Awaited<ReturnType<typeof runScheduled>>;
    try {
      schedule = await runScheduled(workloads, {
        runs: o.sizes.runs,
        budgetSeconds: o.budgetSeconds,
        startedAt: t0,
        log,
        onWorkload: (name) => {
          tracker.sample();
          tracker.label = name;
        },
      });
    } finally {
      tracker.stop();
      results.rssByWorkload = tracker.peaksMiB;
    }

    await stopServers(servers);
    const meta: RunMeta = {
      quick: o.quick,
      sizes: o.sizes,
      openSshSkipped: openSshSkipped || undefined,
      rcloneSkipped,
      fsync: o.fsync,
      diskSyncMs: diskSync,
      elapsedSeconds: (performance.now() - t0) / 1000,
      loadStart,
      loadEnd: os.loadavg(),
      workDir,
      skippedWorkloads: WORKLOADS.filter((w) => !o.only.includes(w)),
      budgetSeconds: o.budgetSeconds,
      ...schedule,
    };
    const machine = machineInfo();
    const markdown = renderReport(results, machine, meta);
    if (o.out) await writeFile(o.out, markdown);
    if (o.json) {
      const targets = targetResults(tableRows(results, o.sizes));
      await writeFile(o.json, JSON.stringify({ machine, meta, targets, results }, null, 2));
    }
    if (o.cpuProfDir) await reportProfiles(o.cpuProfDir, log);
    if (meta.elapsedSeconds > 720) log(`warning: took ${(meta.elapsedSeconds / 60).toFixed(1)} min, over the 12 min goal`);
    return markdown;
  } finally {
    await stopServers(servers);
    await receiver?.close();
    await registry.stopAll();
    if (o.keep) log(`kept ${workDir}`);
    else await rm(workDir, { recursive: true, force: true });
  }
}

async function stopServers(servers: BenchServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
}

async function reportProfiles(dir: string, log: (line: string) => void): Promise<void> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f));
  if (files.length === 0) {
    log(`no .cpuprofile in ${dir}: did the gateway exit cleanly on SIGTERM?`);
    return;
  }
  // Other node processes (init, account add) write profiles too only if they got the flag; only the gateway does.
  for (const f of files) log(`gateway CPU profile ${f}\n${await summariseProfileFile(f)}`);
}

async function main(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const registry = new ProcessRegistry();
  const t0 = performance.now();
  const log = (line: string): void =>
    void process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  // Ctrl-C or a kill: stop every child by pid; runBench's finally then cleans up as its awaits fail.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping servers and clients`);
    void registry.stopAll(2_000);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const markdown = await runBench(options, registry, log);
    process.stdout.write(markdown);
    if (options.out) log(`wrote ${path.relative(process.cwd(), options.out) || options.out}`);
    return 0;
  } catch (err) {
    log(`failed: ${interrupted ? 'interrupted' : ((err as Error).stack ?? String(err))}`);
    return interrupted ? 130 : 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`bench: ${(err as Error).message ?? String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
