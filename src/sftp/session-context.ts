import type { Logger } from '../log.js';
import type { DirHandle, HandleTable, ReadHandle } from './handles.js';
import type { SessionQuota } from './quota-hooks.js';
import type { GatewayStats } from './stats.js';
import type { UserTree } from './user-tree.js';
import type { WriteHandle } from './write-handle.js';

/** What a request handler may use of its session (dispatch.ts and the handlers it calls). */
export interface SessionContext {
  readonly view: UserTree;
  readonly handles: HandleTable;
  readonly stats: GatewayStats;
  readonly log: Logger;
  readonly quota: SessionQuota | undefined;
  /** CLOSE (final) or fsync: links the handle's content under its name. */
  commit(handle: WriteHandle, final: boolean): Promise<void>;
  /** Frees a handle's resources (spool, listing cursor); never throws. */
  release(handle: DirHandle | ReadHandle | WriteHandle): Promise<void>;
}
