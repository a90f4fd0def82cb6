import path from 'node:path';

/**
 * The node directory (`capstan init` creates it; docs/operations.md
 * describes it for operators):
 *
 *     <node>/                          0700
 *       capstan.cfg                    configuration (src/config/schema.ts)
 *       private/                       0700: everything secret; back it up
 *         ssh_host_ed25519_key[.pub]   host keys, 0600 (OpenSSH format)
 *         ssh_host_rsa_key[.pub]
 *         convergence.secret           32 random bytes as 64 hex digits, 0600
 *         homes.secret                 the same form: names and seals homes of user-directory users (src/homes)
 *         accounts                     who may log in (src/auth/accounts-file.ts), 0600
 *         slots.sock                   while `capstan run` runs: the node socket (slots and chunks), 0600
 *         pins                         caps gc keeps alive besides the account roots (src/gc/pins.ts)
 *         quotas                       per-account quotas (src/quota/quotas-file.ts)
 *         s3-credentials, postgres-password   only for those backends
 *       store/chunks/packs/            the embedded default's pack files (storage engine v3, docs/spec/packs.md)
 *       store/chunks/chunks/           loose chunk files of layouts v1/v2 (read; and the fs store with S3-less shared setups)
 *       store/slots/                   the LevelDB: slots, and the object index of the packs
 *       store/objects/                 with backend = s3 and LevelDB slots: the object index of the packs in the bucket
 *       store/outbox/                  the durable event outbox (src/events/outbox.ts)
 *       store/quota-usage.json         per-account usage counters
 *       store/slot-watermarks          the highest version seen of each directory: rollbacks are refused (src/node/slot-watermarks.ts)
 *       store/defender/                the defender's scores and bans (src/defender/level-store.ts; slots.backend = level)
 *       store/s3-cache/                the bounded read cache with backend = s3
 *       spool/                         0700: uploads in progress; emptied at every start
 *
 * Paths under store/ and the accounts file can be moved with capstan.cfg
 * keys; the rest is fixed relative to the node directory.
 */
export const PRIVATE_DIR = 'private';
export const CONVERGENCE_SECRET_FILE = 'private/convergence.secret';
export const HOMES_SECRET_FILE = 'private/homes.secret';
export const SLOT_SOCKET_FILE = 'private/slots.sock';
export const SPOOL_DIR = 'spool';
export const SLOT_WATERMARKS_FILE = 'store/slot-watermarks';
export const HOST_KEY_FILES = { ed25519: 'private/ssh_host_ed25519_key', rsa: 'private/ssh_host_rsa_key' } as const;

export function nodePath(nodeDir: string, relative: string): string {
  return path.join(nodeDir, relative);
}
