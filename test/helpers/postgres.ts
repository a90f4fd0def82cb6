import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { REPO } from './cli.js';
import { registerServerStop } from './server-stops.js';

/**
 * A private PostgreSQL for tests, started with scripts/postgres-server.sh in
 * a temp directory on a free loopback port, or the server named by
 * CAPSTAN_TEST_POSTGRES_URL (then nothing is started or stopped, and each
 * test works in a schema of its own). Stop what you start: call `stop()` in
 * afterAll (it stops the postmaster by its data directory's pid file, with
 * pg_ctl's fast shutdown, and removes the directory).
 */

const SCRIPT = path.join(REPO, 'scripts/postgres-server.sh');
const run = promisify(execFile);

/** Why PostgreSQL tests cannot run here, or undefined if they can. */
export function postgresUnavailable(): string | undefined {
  if (process.env.CAPSTAN_TEST_POSTGRES_URL) return undefined;
  const bindirs = ['/usr/lib/postgresql'].flatMap((root) =>
    existsSync(root) ? readdirSync(root).map((v) => path.join(root, v, 'bin')) : [],
  );
  const found = bindirs.some((d) => ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(path.join(d, b))));
  if (!found) return 'not installed: PostgreSQL server binaries (Debian package postgresql)';
  if (process.getuid?.() === 0) {
    // The server refuses to run as root; the script runs it as `postgres`.
    const passwd = existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8') : '';
    if (!passwd.split('\n').some((l) => l.startsWith('postgres:'))) return 'no postgres user to run the server as (we are root)';
  }
  return undefined;
}

export interface TestPostgres {
  /** A URL of a database the tests may create schemas in. */
  url: string;
  /** True when started here (so stop/start below really stop and start a server). */
  owned: boolean;
  /** Stops the server, keeping its data (only when owned). */
  pause(): Promise<void>;
  /** Starts it again on the same port (only when owned). */
  resume(): Promise<void>;
  /** Stops it for good and removes its directory; safe to call twice. */
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const given = process.env.CAPSTAN_TEST_POSTGRES_URL;
  if (given) {
    const noop = async () => undefined;
    return { url: given, owned: false, pause: noop, resume: noop, stop: noop };
  }
  // Directly under the system temp dir: every parent must be traversable by the postgres user.
  const parent = await mkdtemp(path.join(tmpdir(), 'capstan-pg-'));
  await chmod(parent, 0o755);
  const dir = path.join(parent, 'pg');
  const script = (args: string[]) => run('bash', [SCRIPT, ...args], { timeout: 90_000 });
  // Registered before the server is started (pg_ctl stops the postmaster by its pid file): should
  // beforeAll time out while it starts, server-stops.ts stops it, and a start still under way then
  // stops it again when it comes back.
  let abandoned = false;
  const halt = async (): Promise<void> => {
    await script(['stop', dir]).catch(() => undefined);
    await rm(parent, { recursive: true, force: true });
  };
  const stop = registerServerStop(async () => {
    abandoned = true;
    await halt();
  });
  try {
    // The free port is picked before the server binds it, so another process
    // may take it in between: one retry on a new port.
    const { stdout } = await script(['start', dir]).catch(async () => {
      await rm(path.join(dir, 'port'), { force: true });
      return script(['start', dir]);
    });
    if (abandoned) throw new Error('PostgreSQL was stopped while it started');
    const url = stdout.trim().split('\n').pop()!;
    return {
      url,
      owned: true,
      pause: async () => void (await script(['stop', dir])),
      resume: async () => void (await script(['start', dir])),
      stop,
    };
  } catch (err) {
    if (abandoned) await halt();
    else await stop();
    throw err;
  }
}

let schemaCounter = 0;
/** A schema name no other test (or test run against a shared server) uses. */
export function freshSchema(prefix = 't'): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${schemaCounter++}`;
}

/** Drops a schema and everything in it (cleanup for a server the tests do not own). */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
