import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerModuleUrl } from '../../src/util/worker-module.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The module specifiers `file` imports, as the TypeScript parser reads them. */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

describe('worker threads run typed modules', () => {
  const files = sourceFiles(SRC);
  const workers = files.filter((f) => f.endsWith('.worker.ts'));

  it('no thread runs a code string, and only RequestWorker starts one', () => {
    expect(workers.map((f) => path.relative(SRC, f)).sort()).toEqual([
      'auth/crypt.worker.ts',
      'crypto/offload.worker.ts',
      'store/chunks/fs/fs-io.worker.ts',
      'tree/file/seal.worker.ts',
    ]);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/\beval\s*:/);
      if (path.relative(SRC, file) !== path.join('util', 'request-worker.ts')) expect(text, file).not.toMatch(/new Worker\(/);
      // Each module a caller names exists beside it, as TypeScript.
      for (const [, name] of text.matchAll(/workerModuleUrl\('\.\/([\w.-]+)\.js'/g)) {
        expect(files, `${file} starts ${name}`).toContain(path.join(path.dirname(file), `${name}.ts`));
      }
    }
  });

  it('each worker imports the code the main thread runs instead of carrying its own', () => {
    // The seal worker: ChunkSealer, which the writer's inline path uses; no crypto of its own.
    expect(importsOf(path.join(SRC, 'tree/file/seal.worker.ts'))).toContain('./chunk-sealer.js');
    expect(importsOf(path.join(SRC, 'tree/file/seal.worker.ts'))).not.toContain('node:crypto');
    expect(importsOf(path.join(SRC, 'tree/file/chunk-sealer.ts'))).toEqual(
      expect.arrayContaining(['../../crypto/aead.js', '../../crypto/kdf.js']),
    );
    // The I/O threads: fs-sync.ts, which names chunks by address.ts and places them by fs-layout.ts.
    const io = importsOf(path.join(SRC, 'store/chunks/fs/fs-io.worker.ts'));
    expect(io).toContain('./fs-sync.js');
    expect(io.filter((m) => m.startsWith('node:') && m !== 'node:worker_threads')).toEqual([]);
    expect(importsOf(path.join(SRC, 'store/chunks/fs/fs-sync.ts'))).toEqual(expect.arrayContaining(['./fs-layout.js', '../../address.js']));
    // The offload thread: kdf.ts's sha256 and aead.ts's openConvergentInPlace, which the inline path calls.
    const offload = importsOf(path.join(SRC, 'crypto/offload.worker.ts'));
    // Its reads out of pack files: read-fully.ts, which the pack reader on the event loop calls too.
    expect(offload).toEqual(expect.arrayContaining(['./aead.js', './kdf.js', '../util/read-fully.js']));
    expect(importsOf(path.join(SRC, 'store/packs/pack-files.ts'))).toContain('../../util/read-fully.js');
    expect(offload.filter((m) => m.startsWith('node:'))).toEqual([]);
    // The crypt worker: the published libraries, by name.
    expect(importsOf(path.join(SRC, 'auth/crypt.worker.ts'))).toEqual(expect.arrayContaining(['unixcrypt', 'apache-md5']));
  });
});

describe('workerModuleUrl', () => {
  let root: string;
  const from = (rel: string) => pathToFileURL(path.join(root, rel)).href;
  beforeAll(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-worker-url-'));
    await fsp.writeFile(path.join(root, 'package.json'), '{}');
    await fsp.mkdir(path.join(root, 'src/a'), { recursive: true });
    await fsp.mkdir(path.join(root, 'dist/a'), { recursive: true });
    await fsp.writeFile(path.join(root, 'src/a/pool.ts'), '');
    await fsp.writeFile(path.join(root, 'src/a/x.worker.ts'), '');
    await fsp.writeFile(path.join(root, 'dist/a/x.worker.js'), '');
  });
  afterAll(async () => {
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('is the sibling .js from compiled code', () => {
    expect(workerModuleUrl('./x.worker.js', from('dist/a/pool.js')).href).toBe(from('dist/a/x.worker.js'));
  });

  it('is the compiled file under dist/ from a .ts source under src/', () => {
    expect(workerModuleUrl('./x.worker.js', from('src/a/pool.ts')).href).toBe(from('dist/a/x.worker.js'));
  });

  it('says to build when the compiled file is missing or older than its source', async () => {
    expect(() => workerModuleUrl('./y.worker.js', from('src/a/pool.ts'))).toThrow(/run npm run build/);
    const past = new Date(Date.now() - 60_000);
    await fsp.utimes(path.join(root, 'dist/a/x.worker.js'), past, past);
    expect(() => workerModuleUrl('./x.worker.js', from('src/a/pool.ts'))).toThrow(/older than .*run npm run build/);
  });

  it('refuses a .ts caller outside src/', () => {
    expect(() => workerModuleUrl('./x.worker.js', from('test/pool.ts'))).toThrow(/neither compiled nor under/);
  });
});
