import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Runs the real harness (`node dist-bench/bench/run.js --quick`) against a
 * real capstan gateway, a real sshd and, when rclone is installed, a real
 * `rclone serve sftp` over a crypt remote, and checks that the table comes
 * out with every row and every target. It asserts no speed: --quick sizes
 * prove nothing about speed.
 */

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUN = path.join(REPO, 'dist-bench/bench/run.js');

function skipReason(): string | undefined {
  if (!existsSync('/usr/sbin/sshd')) return '/usr/sbin/sshd is not installed';
  for (const bin of ['sftp', 'ssh-keygen']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) return `${bin} is not installed`;
  }
  if (process.getuid?.() !== 0) return 'not root (sshd ChrootDirectory needs root)';
  return undefined;
}
const skip = skipReason();
/** Without rclone the harness runs, says the rclone side was skipped, and its columns stay empty. */
const hasRclone = spawnSync('sh', ['-c', 'command -v rclone']).status === 0;

let child: ChildProcess | undefined;
let scratch: string | undefined;

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM'); // the harness stops its servers and clients on SIGTERM
    const timer = setTimeout(() => child!.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

function runHarness(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    child = spawn(process.execPath, [RUN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child!.kill('SIGTERM'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run bench -- --quick', () => {
  it.skipIf(skip !== undefined)(
    `produces the table for capstan, OpenSSH and rclone${skip ? ` (skipped: ${skip})` : ''}`,
    async () => {
      expect(existsSync(RUN), 'dist-bench/bench/run.js is missing: build first (npm test builds it: npm run build:bench)').toBe(true);
      scratch = await mkdtemp(path.join(tmpdir(), 'capstan-bench-smoke-'));
      const out = path.join(scratch, 'benchmarks.md');
      const json = path.join(scratch, 'bench.json');
      // The run takes 1.5 min on a quiet 2-core machine; measured 4 min inside a full `npm test` at load average 17
      // (Swift alone took up to 27 s to come up). The limit is twice that: it only stops a hung harness.
      const r = await runHarness(['--quick', '--out', out, '--json', json], 480_000);
      expect(r.code, r.stderr).toBe(0);

      const markdown = await readFile(out, 'utf8');
      expect(r.stdout).toBe(markdown);
      expect(markdown).not.toMatch(/OpenSSH side skipped/);
      if (hasRclone) expect(markdown).not.toMatch(/rclone side skipped/);
      else expect(markdown).toMatch(/rclone side skipped: rclone is not installed/);
      expect(markdown).toMatch(
        /^\| workload \| capstan \| OpenSSH \| capstan \/ OpenSSH \| rclone \| capstan \/ rclone \| target \| met\? \|$/m,
      );
      expect(markdown).toMatch(/cipher (aes128-gcm@openssh\.com|chacha20-poly1305@openssh\.com)/);
      expect(markdown).toMatch(/Machine: \d+ cores .*Node v\d+.*OpenSSH_.*; (rclone v[\d.]+|rclone not found)/);
      // A figure for rclone where it runs, "—" for it where it does not.
      const rc = hasRclone ? '[\\d.,]+' : '—';
      const rcRatio = hasRclone ? '[\\d.]+×' : '—';
      const verdict = '(met|not met)';
      for (const row of [
        new RegExp(
          `^\\| put one 8 MiB file \\(MB/s\\) \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| ${rc} \\| ${rcRatio} \\| ≥ 0\\.8× OpenSSH; ≥ 1× rclone \\| ${verdict}; ${hasRclone ? verdict : 'not measured'} \\|$`,
          'm',
        ),
        new RegExp(`^\\| get one 8 MiB file \\(MB/s\\) \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| ${rc} \\| ${rcRatio} \\|`, 'm'),
        /^\| server CPU per GiB put .* \| ≤ 8 CPU-s \| (met|not met) \|$/m,
        /^\| server CPU per GiB got .* \| ≤ 3\.5 CPU-s \| (met|not met) \|$/m,
        new RegExp(
          `^\\| put 40 files of 16 KiB \\(files/s\\) \\| [\\d,]+ \\| [\\d,]+ \\| [\\d.]+× \\| ${rc} \\| ${rcRatio} \\| ≥ 0\\.5× OpenSSH \\| ${verdict} \\|$`,
          'm',
        ),
        /^\| server CPU per small file .* \| ≤ 1\.5 CPU-ms \| (met|not met) \|$/m,
        new RegExp(`^\\| 8 clients each putting 1 MiB \\(aggregate MB/s\\) \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| ${rc} \\|`, 'm'),
        /^\| server peak RSS during 8 clients each putting 1 MiB, highest of the runs \(MiB\) \| \d+ \|.* \| ≤ 256 MiB \| (met|not met) \|$/m,
        /^\| server RSS right after that run, .* \| \d+ \|.* \| ≤ 256 MiB \| (met|not met) \|$/m,
        new RegExp(`^\\| populate a directory to 100 entries .* \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| ${rc} \\|`, 'm'),
        new RegExp(
          `^\\| one more entry in a directory of 100 \\(ms\\) \\| [\\d.]+ \\| [\\d.]+ \\| [\\d.]+× \\| ${rc} \\| ${rcRatio} \\| ≤ 3 ms \\| ${verdict} \\|$`,
          'm',
        ),
        new RegExp(`^\\| \`ls -l\` of 100 entries \\(s\\) .* \\| ${rc} \\| ${rcRatio} \\| < 1 s \\| ${verdict} \\|$`, 'm'),
        /^\| capstan peak RSS during the first 8 MiB put, after only uploads \(MiB\) \| \d+ \|/m,
        /^\| capstan peak RSS while each workload ran, sampled \(MiB\) \| startup \d+, huge \d+, transfer \d+, small \d+, concurrent \d+, dirs \d+, s3 \d+, copy \d+, snapshot \d+ \|/m,
        /^\| capstan peak RSS during a 32 MiB put /m,
        /^\| store growth from a second upload of the same 8 MiB /m,
        new RegExp(
          `^\\| one more entry in a directory of 10 while growing it \\(bytes stored, time\\) \\| [\\d,]+ B, [\\d.]+ ms \\| [\\d,]+ B, [\\d.]+ ms \\|  \\| ${hasRclone ? '[\\d,]+ B, [\\d.]+ ms' : '—'} \\|`,
          'm',
        ),
        /^\| one more entry in a directory of 100 while growing it /m,
        // capstan only, in-process on a node of its own (--quick: trees of 200 and 2,000 files).
        /^\| snapshot of a tree of 200 \/ 2,000 files, in-process, fsync on \(ms, median of 15 each; less is better\) \| [\d.]+ \/ [\d.]+ \|/m,
        /^\| snapshot of 2,000 files against 200 \(time ratio\) \| [\d.]+× \|.* \| ≤ 1\.5 × the small tree \| (met|not met) \|$/m,
        /^\| `capstan snapshot create` of 200 \/ 2,000 files, the whole command .* \| \d+ \/ \d+ \|/m,
        // Measured when python3-swift is installed, else skipped with the reason; never missing.
        /^\| put \/ get 8 MiB, chunks in S3 \(local Swift\) \(MB\/s\) \| ([\d.]+ \/ [\d.]+ \| {2}\| [\d.]+× \/ [\d.]+×|skipped: [^|]+\| {2}\| ) \|/m,
        /^\| S3 PUT requests per small file.* \| ([\d.]+|skipped: [^|]+) \|.* \| ≤ 2 PUTs \| (met|not met|not measured) \|$/m,
      ]) {
        expect(markdown).toMatch(row);
      }
      // Every target of bench/targets.ts has a verdict.
      expect(markdown).toMatch(/^\d+ of 19 met /m);

      const results = JSON.parse(await readFile(json, 'utf8')) as {
        results: { putMBps: Record<string, number[]>; lsEntries: number };
        targets: { id: string; verdict: string }[];
      };
      expect(Object.keys(results.results.putMBps).sort()).toEqual(hasRclone ? ['OpenSSH', 'capstan', 'rclone'] : ['OpenSSH', 'capstan']);
      expect(results.results.lsEntries).toBe(100);
      expect(results.targets).toHaveLength(19);
      for (const t of results.targets) expect(['met', 'not met', 'not measured']).toContain(t.verdict);

      // The harness removed its scratch folder (and so stopped what ran in it).
      const workDir = r.stderr.match(/starting capstan in (\S+)/)?.[1];
      expect(workDir).toBeDefined();
      expect(existsSync(workDir!)).toBe(false);
    },
    510_000,
  );
});
