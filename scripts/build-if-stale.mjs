#!/usr/bin/env node
/**
 * `npm start`'s build step: compiles src/ with tsc only when something it
 * reads changed since the last build (a source file, a tsconfig, the
 * installed dependencies), so a restart costs nothing when nothing changed
 * (tsc takes about 7 s here). Stale means: dist/.build-stamp (touched by
 * `npm run build` when tsc succeeds) is missing, or any of those inputs is
 * newer than it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(repo, 'dist', '.build-stamp');

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(full));
    else latest = Math.max(latest, statSync(full).mtimeMs);
  }
  return latest;
}

function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

const built = mtime(stamp);
const inputs = Math.max(
  newest(path.join(repo, 'src')),
  mtime(path.join(repo, 'tsconfig.json')) ?? 0,
  mtime(path.join(repo, 'package.json')) ?? 0,
  mtime(path.join(repo, 'node_modules', '.package-lock.json')) ?? 0,
);
if (built !== undefined && built >= inputs) process.exit(0);

// The build script itself touches the stamp once tsc succeeded.
const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: repo, stdio: 'inherit' });
process.exit(result.status ?? 1);
