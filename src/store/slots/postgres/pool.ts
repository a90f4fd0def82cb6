import pg from 'pg';
import type { Logger } from '../../../log.js';

/** How to reach PostgreSQL: what the slot store and the defender's store share. */
export interface PostgresConnectionOptions {
  /**
   * A libpq-style URL (postgres://user:password@host:port/database?...).
   * Fields it leaves out come from the PG* environment variables, as with
   * psql (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD).
   */
  url?: string | undefined;
  /** Used when the URL carries none (it wins over PGPASSWORD). */
  password?: string | undefined;
  /** Connections in the pool. */
  poolSize: number;
  /** How long to wait for a connection (new or from the pool). */
  connectTimeoutMs: number;
  /** Bound on one statement, enforced by the server and by the client. */
  statementTimeoutMs: number;
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  logger?: Logger | undefined;
}

/** `url` with `password` in it, unless it has one already (the URL wins). */
export function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url; // not a URL pg would read as one either; pg reports it
  }
  if (parsed.password !== '') return url;
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/** A pg.Pool as capstan runs them: timeouts on both sides, keep-alive, and idle connection failures logged instead of crashing. */
export function createPool(options: PostgresConnectionOptions): pg.Pool {
  const config: pg.PoolConfig = {
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    // Both sides: the server cancels a statement that runs too long, the
    // client gives up on one whose answer does not come (a dead network).
    query_timeout: options.statementTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: options.applicationName ?? 'capstan',
  };
  // pg lets what the URL says (even a missing password) override the
  // separate fields, so a password from elsewhere goes into the URL.
  if (options.url !== undefined) config.connectionString = withPassword(options.url, options.password);
  else if (options.password !== undefined) config.password = options.password;
  const pool = new pg.Pool(config);
  // An idle connection that dies (server restart, network cut) is reported
  // here; without a listener it would crash the process. The pool has
  // already dropped it, and the next query opens a new one.
  const log = options.logger?.child({ component: 'postgres' });
  pool.on('error', (err: Error & { code?: string }) => {
    log?.warn({ event: 'postgres_connection_lost', code: err.code }, 'an idle postgres connection failed');
  });
  return pool;
}
