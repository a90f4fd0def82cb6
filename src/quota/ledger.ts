import type { Quota } from './quotas-file.js';

/** An account's counted usage (src/quota/count.ts says what counts). */
export interface Usage {
  bytes: number;
  files: number;
  /** When a walk last counted the account, ms since 1970. */
  countedAt: number;
}

/**
 * Where the per-account usage counters live (docs/spec/quotas.md): a file
 * in the node directory for one gateway (UsageBook), a table beside the
 * slots when gateways share PostgreSQL (PostgresUsageLedger), so every
 * gateway adds to, and checks against, the same counters.
 *
 * Contract (test/conformance/usage-ledger.ts checks every implementation):
 * - get MUST return undefined for an account never counted (or forgotten).
 * - add MUST change a counted account's counters by the deltas atomically,
 *   never below zero, and return true; with `limit`, if a positive delta
 *   would take a counter past its limit, it MUST change nothing and return
 *   false, so of racing adds that together pass a limit only those that fit
 *   land. An account not counted is left alone (true): its walk will see the
 *   change.
 * - set MUST store a fresh count unless the stored one has a later
 *   countedAt (a recount made elsewhere wins over an older one).
 * - once add or set resolves, every client of the same ledger sees it.
 */
export interface UsageLedger {
  get(user: string): Promise<Usage | undefined>;
  add(user: string, bytes: number, files: number, limit?: Quota): Promise<boolean>;
  set(user: string, usage: Usage): Promise<void>;
  /** Forgets an account: its next use recounts. */
  delete(user: string): Promise<void>;
  /** Adopts counts made elsewhere (a file another process wrote); a no-op where every read is fresh. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** Whether counters `u` changed by (bytes, files) stay within `limit` (only positive deltas are checked). */
export function fitsLimit(u: { bytes: number; files: number }, bytes: number, files: number, limit: Quota | undefined): boolean {
  if (limit === undefined) return true;
  if (limit.bytes !== undefined && bytes > 0 && u.bytes + bytes > limit.bytes) return false;
  if (limit.files !== undefined && files > 0 && u.files + files > limit.files) return false;
  return true;
}
