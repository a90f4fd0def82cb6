import { TAG } from './tags.js';
import { taggedHmac } from './kdf.js';

/**
 * Convergent encryption makes identical uploads deduplicate, and so lets
 * anyone who shares a convergence secret confirm that a given file is stored
 * (Tahoe's confirmation-of-a-file attack) or guess a file's remaining unknown
 * bytes. The domain bounds who "anyone" is.
 *
 * - per-account (default): the secret is derived from the gateway secret and
 *   the account name, so identical files dedupe within an account only and one
 *   tenant cannot probe another's files.
 * - per-gateway: every account shares one secret: more deduplication, and
 *   every user of the gateway can confirm every other user's files.
 */
export type ConvergenceMode = 'per-account' | 'per-gateway';

const encoder = new TextEncoder();

export function convergenceSecret(gatewaySecret: Uint8Array, mode: ConvergenceMode, account?: string): Uint8Array {
  if (gatewaySecret.length < 32) throw new RangeError('gateway convergence secret must be at least 32 bytes');
  if (mode === 'per-gateway' || account === undefined) {
    return taggedHmac(gatewaySecret, TAG.convergenceGateway);
  }
  return taggedHmac(gatewaySecret, TAG.convergenceAccount, encoder.encode(account));
}
