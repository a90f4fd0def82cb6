/** src/defender: brute-force defence (scores, bans, allow/deny lists). The rules are pure (policy.ts); where scores live is a DefenderStore. */
export { AddressList, clientKey, normalizeAddress } from './address.js';
export {
  Defender,
  DEFAULT_DEFENDER_OPTIONS,
  DEFAULT_REFRESH_MS,
  DEFAULT_REFUSED_USERS,
  type Admission,
  type DefenderOptions,
  type FailureKind,
} from './defender.js';
export { MemoryDefenderStore } from './memory-store.js';
export { scoreFailure, scoreFailures, forgetAt, isBanned, type BanPolicy, type ClientRecord, type ScoreEvent } from './policy.js';
export { MAX_CLIENT_KEY_LENGTH, type BanEntry, type DefenderStore, type VersionedRecord } from './store.js';
