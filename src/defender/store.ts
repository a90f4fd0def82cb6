import type { AbortOptions } from '../errors.js';
import type { ClientRecord } from './policy.js';

/**
 * Where the defender keeps its client records (scores and bans), so that
 * several gateways share them and a restart does not forgive. Three
 * implementations pass one conformance suite (test/conformance/defender-store.ts):
 * MemoryDefenderStore (one process, gone at exit), LevelDefenderStore (the
 * node directory) and PostgresDefenderStore (shared by every gateway of one
 * database). The store never interprets a record beyond the fields it
 * indexes (bannedUntil, lastSeen, forgetAt); the rules are src/defender/policy.ts.
 *
 * Keys are client keys (src/defender/address.ts clientKey): an IPv4 address,
 * an IPv6 network with its prefix length, at most MAX_CLIENT_KEY_LENGTH
 * characters.
 */

/** A record and its version, for compare-and-swap. */
export interface VersionedRecord {
  /** Starts at 1 and grows by one per write of the key. */
  version: number;
  record: ClientRecord;
}

export interface BanEntry {
  key: string;
  bannedUntil: number;
  offences: number;
}

export interface DefenderStore {
  /** The record of `key`, or undefined. MUST return the latest committed write by any client of the same backing store. */
  get(key: string, options?: AbortOptions): Promise<VersionedRecord | undefined>;

  /**
   * Writes `record` under `key` if the key is still at `expectedVersion`
   * (undefined: absent), atomically across every client of the same backing
   * store: of racing writes from one version exactly one succeeds and the
   * others MUST throw ConflictError. Resolves with the new version.
   * Creating a key MAY first delete other records to stay within the
   * store's bound (see sweep).
   */
  put(key: string, expectedVersion: number | undefined, record: ClientRecord, options?: AbortOptions): Promise<number>;

  /** Deletes `key`'s record (an operator's unban); resolves with whether there was one. */
  delete(key: string, options?: AbortOptions): Promise<boolean>;

  /**
   * Every record banned at `now` (bannedUntil > now), at most `limit`, the
   * latest-ending first. MUST reflect every put and delete that resolved
   * before the call, from any client.
   */
  bans(now: number, limit: number, options?: AbortOptions): Promise<BanEntry[]>;

  /**
   * A number that changes whenever the set of bans may have changed (a put
   * of a banned record, a delete): a reader that sees the same generation
   * twice may keep the ban list it read in between. Read it before bans().
   */
  generation(options?: AbortOptions): Promise<string>;

  /**
   * Deletes records forgettable at `now` (forgetAt < now), then, while more
   * than `maxEntries` remain, the least recently seen record that is not
   * banned, and only if all are banned the least recently seen banned one.
   * Resolves with the number deleted.
   */
  sweep(now: number, maxEntries: number, options?: AbortOptions): Promise<number>;

  /** Records held now (for tests and status). */
  size(options?: AbortOptions): Promise<number>;

  /** Releases what the store holds (connections, files). Idempotent. */
  close(): Promise<void>;
}

/** Longest key a store accepts: an expanded IPv6 network with its prefix (43) and some room. */
export const MAX_CLIENT_KEY_LENGTH = 100;
