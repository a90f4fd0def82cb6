import { promises as fsp, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerModuleUrl } from '../../src/util/worker-module.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The module specifiers `file` imports, as the TypeScript parser reads them. */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

describe('worker threads run typed modules', () => {
  it('the seal worker imports the code the main thread runs instead of carrying its own', () => {
    // ChunkSealer, which the writer's inline path uses; no crypto of its own.
    expect(importsOf(path.join(SRC, 'tree/file/seal.worker.ts'))).toContain('./chunk-sealer.js');
    expect(importsOf(path.join(SRC, 'tree/file/seal.worker.ts'))).not.toContain('node:crypto');
    expect(importsOf(path.join(SRC, 'tree/file/chunk-sealer.ts'))).toEqual(
      expect.arrayContaining(['../../crypto/aead.js', '../../crypto/kdf.js']),
    );
  });

  it('the I/O threads import fs-sync.ts, which names chunks by address.ts and places them by fs-layout.ts', () => {
    const io = importsOf(path.join(SRC, 'store/chunks/fs/fs-io.worker.ts'));
    expect(io).toContain('./fs-sync.js');
    expect(io.filter((m) => m.startsWith('node:') && m !== 'node:worker_threads')).toEqual([]);
    expect(importsOf(path.join(SRC, 'store/chunks/fs/fs-sync.ts'))).toEqual(expect.arrayContaining(['./fs-layout.js', '../../address.js']));
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
