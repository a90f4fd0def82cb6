/** src/defender: brute-force defence (scores, bans, allow/deny lists). Pure logic: the SFTP frontend calls it. */
export { AddressList, clientKey, normalizeAddress } from './address.js';
export {
  Defender,
  DEFAULT_DEFENDER_OPTIONS,
  DEFAULT_REFUSED_USERS,
  type Admission,
  type DefenderOptions,
  type FailureKind,
} from './defender.js';
