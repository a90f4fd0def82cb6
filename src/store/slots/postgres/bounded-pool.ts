import type pg from 'pg';
import { TransientError } from '../../../errors.js';
import { classifyPostgresError } from './errors.js';

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
