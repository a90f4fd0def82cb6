import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Runs the real harness (`node dist-bench/bench/run.js --quick`) against a real
 * capstan gateway and a real sshd, and checks that the table comes out with
 * every row. It asserts no speed: --quick sizes prove nothing about speed.
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
    `produces the table for capstan and OpenSSH${skip ? ` (skipped: ${skip})` : ''}`,
    async () => {
      expect(existsSync(RUN), 'dist-bench/bench/run.js is missing: build first (npm test builds it: npm run build:bench)').toBe(true);
      scratch = await mkdtemp(path.join(tmpdir(), 'capstan-bench-smoke-'));
      const out = path.join(scratch, 'benchmarks.md');
      const json = path.join(scratch, 'bench.json');
      // Swift (the s3 row) alone takes 5-20 s to come up on a loaded 2-core machine.
      const r = await runHarness(['--quick', '--out', out, '--json', json], 110_000);
      expect(r.code, r.stderr).toBe(0);

      const markdown = await readFile(out, 'utf8');
      expect(r.stdout).toBe(markdown);
      expect(markdown).not.toMatch(/OpenSSH side skipped/);
      expect(markdown).toMatch(/^\| workload \| capstan \| OpenSSH \| capstan \/ OpenSSH \| target \| met\? \|$/m);
      expect(markdown).toMatch(/cipher (aes128-gcm@openssh\.com|chacha20-poly1305@openssh\.com)/);
      expect(markdown).toMatch(/Machine: \d+ cores .*Node v\d+.*OpenSSH_/);
      for (const row of [
        /^\| put one 8 MiB file \(MB\/s\) \| [\d.]+ \| [\d.]+ \| [\d.]+× \| ≥ 0\.8× OpenSSH \| (met|not met) \|$/m,
        /^\| get one 8 MiB file /m,
        /^\| put 40 files of 16 KiB \(files\/s\) /m,
        /^\| 8 clients each putting 1 MiB /m,
        /^\| `ls -l` of 100 entries \(s\) .* \| < 1 s \| (met|not met) \|$/m,
        /^\| capstan peak RSS during the first 8 MiB put, after only uploads \(MiB\) \| \d+ \|/m,
        /^\| capstan peak RSS while each workload ran, sampled \(MiB\) \| startup \d+, huge \d+, transfer \d+, small \d+, concurrent \d+, dirs \d+, s3 \d+ \|/m,
        /^\| capstan peak RSS during a 32 MiB put /m,
        /^\| store growth from a second upload of the same 8 MiB /m,
        /^\| one more entry in a directory of 10 \(bytes stored, time\) \| [\d,]+ B, [\d.]+ ms \| [\d,]+ B, [\d.]+ ms \|/m,
        /^\| one more entry in a directory of 100 /m,
        // Measured when python3-swift is installed, else skipped with the reason; never missing.
        /^\| put \/ get 8 MiB, chunks in S3 \(local Swift\) \(MB\/s\) \| ([\d.]+ \/ [\d.]+ \| {2}\| [\d.]+× \/ [\d.]+×|skipped: [^|]+\| {2}\| —) \|/m,
      ]) {
        expect(markdown).toMatch(row);
      }

      const results = JSON.parse(await readFile(json, 'utf8')) as { results: { putMBps: Record<string, number[]>; lsEntries: number } };
      expect(Object.keys(results.results.putMBps).sort()).toEqual(['OpenSSH', 'capstan']);
      expect(results.results.lsEntries).toBe(100);

      // The harness removed its scratch folder (and so stopped what ran in it).
      const workDir = r.stderr.match(/starting capstan in (\S+)/)?.[1];
      expect(workDir).toBeDefined();
      expect(existsSync(workDir!)).toBe(false);
    },
    120_000,
  );
});
