import ssh2 from '../crypto/ssh2.js';

const { utils } = ssh2;

export type SshKeyType = 'ed25519' | 'rsa' | 'ecdsa';

export interface SshKeyPair {
  /** OpenSSH private key text. */
  private: string;
  /** `type base64 [comment]` line. */
  public: string;
}

/** Enough that a retry loop never spins, with failures about 1 in 256 each. */
const MAX_ATTEMPTS = 16;

/**
 * ssh2's generateKeyPairSync, keeping only pairs that ssh2 itself can read back.
 *
 * Why: ssh2 1.17 writes an Ed25519 public key whose first byte is zero as 31
 * bytes instead of 32 (it strips the leading zero), about once in 256 keys;
 * the result is refused by ssh2's own parser ("Malformed OpenSSH public key")
 * and by OpenSSH. A host key made that way would stop `capstan run` on a node
 * that `capstan init` had just created. Regenerating is safe: the rejected
 * pair was never written anywhere.
 */
export function generateSshKeyPair(type: SshKeyType, options: { bits?: number; comment?: string } = {}): SshKeyPair {
  const comment = options.comment !== undefined ? { comment: options.comment } : {};
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const pair =
      type === 'rsa'
        ? utils.generateKeyPairSync('rsa', { bits: options.bits ?? 3072, ...comment })
        : type === 'ecdsa'
          ? utils.generateKeyPairSync('ecdsa', { bits: (options.bits ?? 256) as 256 | 384 | 521, ...comment })
          : utils.generateKeyPairSync('ed25519', comment);
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) {
      return { private: pair.private, public: pair.public };
    }
  }
  throw new Error(`could not generate a well-formed ${type} key in ${MAX_ATTEMPTS} attempts`);
}
