import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The repository root, found from this module's own location: bench/ when a
 * test imports the source, dist-bench/bench/ when `npm run bench` runs the
 * compiled harness. The nearest folder above with a package.json is the root
 * either way, so no path here depends on how deep the output sits.
 */
function findRepo(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const REPO = findRepo(path.dirname(fileURLToPath(import.meta.url)));

/** scripts/swift-server.mjs, the one Swift launcher the tests use too (a plain ESM script: typed here by hand). */
export interface SwiftLauncher {
  swiftUnavailable(): string | undefined;
  startSwift(): Promise<SwiftHandle>;
  stopSwift(handle: { dir: string; pids: number[] }): Promise<void>;
}

export interface SwiftHandle {
  endpoint: string;
  dir: string;
  pids: number[];
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/**
 * Loaded by absolute path from REPO: the compiled harness sits one folder
 * deeper than its source, so a static relative import would be right in only
 * one of the two places.
 */
export async function loadSwiftLauncher(): Promise<SwiftLauncher> {
  return (await import(pathToFileURL(path.join(REPO, 'scripts/swift-server.mjs')).href)) as SwiftLauncher;
}
