import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (outside tsc's rootDir, so not imported). */
export const CLI_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
})();
