import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The URL of a worker thread's module: `specifier` (always the compiled
 * name, e.g. './seal.worker.js') resolved against `from`, the caller's
 * import.meta.url. From dist/ (and dist-bench/) that is simply
 * `new URL(specifier, from)`, the sibling .js file.
 *
 * Why more than that: the tests run the TypeScript sources (vitest compiles
 * them in memory), so there `from` is a .ts file under src/ and no .js
 * sibling exists; and Node 20 cannot run a .ts file in a Worker. A worker
 * started from a .ts under `<root>/src/` therefore runs the compiled module
 * at the same relative path under `<root>/dist/`, which `npm test` builds
 * first (its pretest runs `npm run build`). The worker's own imports resolve
 * inside dist/ too, so a test's worker runs the last build of everything it
 * imports, while the test's main thread runs the sources: a test that
 * compares the two paths (test/tree/seal-pool.test.ts) thereby also checks
 * that the build is current. Missing, or older than its .ts source, the
 * compiled module is an error that says to run `npm run build`, rather than
 * a worker running stale or no code.
 */
export function workerModuleUrl(specifier: string, from: string): URL {
  const url = new URL(specifier, from);
  if (!from.endsWith('.ts')) return url;
  const file = fileURLToPath(url);
  const root = packageRoot(path.dirname(fileURLToPath(from)));
  const inSrc = path.relative(path.join(root, 'src'), file);
  if (inSrc.startsWith('..') || path.isAbsolute(inSrc)) {
    throw new Error(`worker module ${specifier}: ${fileURLToPath(from)} is neither compiled nor under ${root}/src`);
  }
  const compiled = path.join(root, 'dist', inSrc);
  if (!existsSync(compiled)) throw new Error(`worker module ${compiled} is missing: run npm run build`);
  const source = file.replace(/\.js$/, '.ts');
  if (existsSync(source) && statSync(source).mtimeMs > statSync(compiled).mtimeMs) {
    throw new Error(`worker module ${compiled} is older than ${source}: run npm run build`);
  }
  return pathToFileURL(compiled);
}

/** The nearest folder at or above `dir` with a package.json. */
function packageRoot(dir: string): string {
  for (let at = dir; ; at = path.dirname(at)) {
    if (existsSync(path.join(at, 'package.json'))) return at;
    if (path.dirname(at) === at) throw new Error(`no package.json above ${dir}`);
  }
}
