/**
 * The small-upload commit path alone, in one process, no SFTP: a file writer
 * seals a 16 KiB file, its manifest is stored, and the file is linked into
 * a directory, on the embedded default's engine (packs and LevelDB, fsync
 * on), as a gateway does for each `put`. After an untimed warm-up (the JIT
 * compiles this path over a few thousand uploads), it reports the whole
 * process's CPU and the wall time per file.
 *
 * With `--in-dir N` the timed files go into a folder that already holds N
 * entries (as the bench's "one more entry in 10,000"); `--bytes` sets the
 * file size (1: a literal cap, so only directory nodes are written).
 *
 * Without the SSH client and the gateway's session work competing for the
 * two cores, it varies less than `npm run bench -- --only small`; run it
 * alternately against two builds to compare them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalEngine } from '../src/store/packs/local-engine.js';
import type { Directory } from '../src/tree/api.js';
import { createTree } from '../src/tree/tree.js';
import { numericOption, runIfMain } from './cli.js';

export interface CommitPathOptions {
  files?: number | undefined;
  warmFiles?: number | undefined;
  fileBytes?: number | undefined;
  fsync?: boolean | undefined;
  /** Entries the timed folder holds before the timed uploads (default 0). */
  inDir?: number | undefined;
}

export interface CommitPathResult {
  files: number;
  cpuMicrosPerFile: number;
  userMicrosPerFile: number;
  systemMicrosPerFile: number;
  wallMicrosPerFile: number;
}

export async function runCommitPath(options: CommitPathOptions = {}): Promise<CommitPathResult> {
  const files = options.files ?? 1500;
  const fileBytes = options.fileBytes ?? 16 * 1024;
  const dir = await mkdtemp(path.join(tmpdir(), 'capstan-commit-path-'));
  const engine = await LocalEngine.open({
    slotsDir: path.join(dir, 'slots'),
    packsDir: path.join(dir, 'packs'),
    fsync: options.fsync ?? true,
  });
  try {
    // SHA-256 only, the gateway's default [storage] checksums.
    const tree = createTree({ chunks: engine.chunks, slots: engine.slots, checksums: ['sha256'] });
    const root = tree.directory(await tree.createDirectory());
    const convergence = randomBytes(32);
    const contents = Array.from({ length: 64 }, () => randomBytes(fileBytes));
    let n = 0;
    const upload = async (into: Directory): Promise<void> => {
      const bytes = contents[n % contents.length]!;
      // Every file differs: no upload deduplicates against an earlier one (a file under 4 bytes is a literal cap).
      if (bytes.length >= 4) bytes.writeUInt32BE(n, 0);
      const writer = tree.createFileWriter(convergence);
      await writer.write(bytes);
      const { cap, size } = await writer.finish();
      const now = Date.now();
      await into.link(`f${n++}`, cap, { size, mtimeMs: now, ctimeMs: now });
    };
    const warm = tree.directory(await root.mkdir('warm'));
    for (let i = 0; i < (options.warmFiles ?? 2000); i++) await upload(warm);
    const timed = tree.directory(await root.mkdir('timed'));
    for (let i = 0; i < (options.inDir ?? 0); i++) await upload(timed);
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < files; i++) await upload(timed);
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    return {
      files,
      cpuMicrosPerFile: (used.user + used.system) / files,
      userMicrosPerFile: used.user / files,
      systemMicrosPerFile: used.system / files,
      wallMicrosPerFile: (wallMs * 1000) / files,
    };
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const r = await runCommitPath({
    files: numericOption(argv, '--files'),
    warmFiles: numericOption(argv, '--warm'),
    fsync: !argv.includes('--no-fsync'),
    fileBytes: numericOption(argv, '--bytes'),
    inDir: numericOption(argv, '--in-dir'),
  });
  const us = (v: number): string => v.toFixed(0);
  console.log(
    argv.includes('--json')
      ? JSON.stringify(r)
      : `${r.files} files: CPU ${us(r.cpuMicrosPerFile)} µs per file (user ${us(r.userMicrosPerFile)}, system ${us(r.systemMicrosPerFile)}), wall ${us(r.wallMicrosPerFile)} µs per file`,
  );
}

runIfMain(import.meta.url, main);
