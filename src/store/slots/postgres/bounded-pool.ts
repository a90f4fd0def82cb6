import type pg from 'pg';
import { TransientError } from '../../../errors.js';
import type { Logger } from '../../../log.js';
import { classifyPostgresError } from './errors.js';
import { openMigratedPool, quoteSchema, type SchemaComponent } from './migrations.js';

/** Where a component's tables are: the slots' database and schema (node/backends.ts slotsDatabase). */
export interface ComponentDatabase {
  url?: string | undefined;
  password?: string | undefined;
  /** SQL schema: the slot store's. Default "public". */
  schema?: string | undefined;
  poolSize?: number | undefined;
  statementTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

/** What differs between components: names, pool and timeouts, and the tables. */
export interface ComponentSettings {
  /** For messages: "postgres object index". */
  component: string;
  applicationName: string;
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  maxPending: number;
  tables: SchemaComponent;
}

/**
 * A pool of one of the components that keep tables beside the slots (the
 * object index, the defender, quota usage): at most `maxPending` statements
 * admitted at once, then TransientError at once rather than an unbounded
 * queue; errors classified (classifyPostgresError) under the component's
 * name. close() waits for statements in flight, then ends every connection;
 * it is idempotent.
 */
export class BoundedPool {
  #pending = 0;
  #closing: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    /** For messages: "postgres object index". */
    private readonly component: string,
    private readonly maxPending: number,
  ) {}

  /**
   * Connects, creates or migrates the component's tables, and returns the
   * pool with the quoted schema its table names go under.
   */
  static async open(options: ComponentDatabase, settings: ComponentSettings): Promise<{ db: BoundedPool; schema: string }> {
    const schema = options.schema ?? 'public';
    const connection = {
      url: options.url,
      password: options.password,
      poolSize: options.poolSize ?? settings.poolSize,
      connectTimeoutMs: settings.connectTimeoutMs,
      statementTimeoutMs: options.statementTimeoutMs ?? settings.statementTimeoutMs,
      applicationName: settings.applicationName,
      logger: options.logger,
    };
    const pool = await openMigratedPool(connection, schema, settings.tables).catch((err: unknown) => {
      throw classifyPostgresError(err, 'opening the schema', settings.component);
    });
    return { db: new BoundedPool(pool, settings.component, settings.maxPending), schema: quoteSchema(schema) };
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(what: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.#pending >= this.maxPending) {
      throw new TransientError(`${this.component}: ${what} refused, ${this.maxPending} statements already waiting`);
    }
    this.#pending++;
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw classifyPostgresError(err, what, this.component);
    } finally {
      this.#pending--;
    }
  }

  close(): Promise<void> {
    return (this.#closing ??= this.pool.end());
  }
}
