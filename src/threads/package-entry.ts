import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The file URL of an installed package's ES-module entry point, resolved
 * from `from` (an import.meta.url) the way node would resolve `import name`.
 *
 * Why: a worker thread's code is a string (request-worker.ts), and such code
 * resolves bare specifiers against the process's working directory, not
 * against capstan's own node_modules; so the main thread hands it absolute
 * URLs. `import.meta.resolve` would do this but is not available under the
 * test runner, and `require.resolve` refuses packages that export only an
 * `import` condition; hence this walk over the same node_modules directories
 * require would search, reading the package's `exports` (`.` → `import` or
 * `default`, a string or `{ default }`) or `main`.
 */
export function packageEntryUrl(name: string, from: string): string {
  const require = createRequire(from);
  for (const dir of require.resolve.paths(name) ?? []) {
    const manifest = path.join(dir, name, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown; main?: string };
    const entry = exportTarget(pkg.exports) ?? pkg.main ?? 'index.js';
    return pathToFileURL(path.join(dir, name, entry)).href;
  }
  throw new Error(`package ${name} is not installed`);
}

function exportTarget(exports: unknown): string | undefined {
  if (typeof exports === 'string') return exports;
  if (exports === null || typeof exports !== 'object') return undefined;
  const dot = (exports as Record<string, unknown>)['.'] ?? exports;
  if (typeof dot === 'string') return dot;
  if (dot === null || typeof dot !== 'object') return undefined;
  for (const condition of ['import', 'node', 'default']) {
    const target = (dot as Record<string, unknown>)[condition];
    if (typeof target === 'string') return target;
    if (target !== null && typeof target === 'object') {
      const nested = (target as Record<string, unknown>)['default'];
      if (typeof nested === 'string') return nested;
    }
  }
  return undefined;
}
