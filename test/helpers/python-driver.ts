import { spawnSync } from 'node:child_process';
import { must } from './backup-tools.js';
import { run, type Target } from './openssh.js';

/**
 * The suites that drive a Python SFTP library (paramiko, AsyncSSH) through
 * a driver script in test/helpers: Debian's own python3, since another
 * python3 on PATH may not have Debian's python3-* modules.
 */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** Why the suite cannot run (for skipNotice), or undefined when `module` imports. */
export function pythonModuleMissing(module: string, debianPackage: string): string | undefined {
  const r = spawnSync(DEBIAN_PYTHON, ['-W', 'ignore', '-c', `import ${module}`], { stdio: 'ignore' });
  return r.status === 0 ? undefined : `not installed: ${DEBIAN_PYTHON} with ${module} (${debianPackage})`;
}

/**
 * Runs one scenario of `driver` as `t` and parses the one JSON object it
 * prints. The driver's usage: DRIVER SCENARIO CONFIG_JSON, with
 * {"port", "user", "password" | null, "keyFile" | null, "work"}.
 */
export async function runPythonDriver<T>(driver: string, scenario: string, t: Target, work: string): Promise<T> {
  const config = { port: t.port, user: t.user, password: t.password ?? null, keyFile: t.keyFile ?? null, work };
  const r = must(await run(DEBIAN_PYTHON, [driver, scenario, JSON.stringify(config)], { timeoutMs: 120_000 }), `${driver} ${scenario}`);
  return JSON.parse(r.stdout) as T;
}
