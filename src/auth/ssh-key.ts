import { createHash, timingSafeEqual } from 'node:crypto';
import type { ParsedKey } from 'ssh2';
import ssh2 from '../crypto/ssh2.js';
import { InvalidInputError } from '../errors.js';

// ssh2 is CommonJS and its `utils` is not visible to node's ESM named-export
// detection, so it is reached through the default export.
const { utils } = ssh2;

export type { ParsedKey };

/**
 * Public key types an accounts line may name. These are the types ssh2 1.17's
 * utils.parseKey reads and its server verifies. Left out on purpose:
 * - `ssh-dss`: 1024-bit DSA, disabled by default since OpenSSH 7.0.
 * - `sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`: ssh2
 *   cannot parse or verify them (its parser returns "Unsupported key format").
 * - `*-cert-v01@openssh.com`: ssh2 parses a certificate's blob as if it were a
 *   plain key, which would be wrong; capstan has no CA support.
 */
export const SUPPORTED_KEY_TYPES: ReadonlySet<string> = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
]);

/** Key types recognised as keys (so the line is not mistaken for a password) but refused. */
const KNOWN_UNSUPPORTED_KEY_TYPE =
  /^(ssh-dss|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com|[a-z0-9-]+-cert-v0[01]@openssh\.com)$/;

/** Minimum RSA modulus accepted, as OpenSSH 9 (RequiredRSASize). */
const MIN_RSA_BITS = 2048;

export function isKeyTypeToken(token: string): boolean {
  return SUPPORTED_KEY_TYPES.has(token) || KNOWN_UNSUPPORTED_KEY_TYPE.test(token);
}

/** Length-prefixed (SSH wire format) string fields of a public key blob. */
function blobFields(blob: Buffer): Buffer[] | undefined {
  const fields: Buffer[] = [];
  let pos = 0;
  while (pos < blob.length) {
    if (blob.length - pos < 4) return undefined;
    const len = blob.readUInt32BE(pos);
    if (blob.length - pos - 4 < len) return undefined;
    fields.push(blob.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  return fields;
}

function rsaModulusBits(blob: Buffer): number {
  const n = blobFields(blob)?.[2];
  if (n === undefined) return 0;
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i]!));
}

/**
 * Parses the `TYPE BASE64` part of an authorized_keys line into an ssh2
 * ParsedKey. Throws InvalidInputError naming the fault; the message carries
 * the key type only if it is one of the known type names.
 */
export function parsePublicKey(type: string, base64: string): ParsedKey {
  if (!SUPPORTED_KEY_TYPES.has(type)) {
    throw new InvalidInputError(KNOWN_UNSUPPORTED_KEY_TYPE.test(type) ? `key type ${type} is not supported` : 'unknown key type');
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new InvalidInputError('public key is not base64');
  const parsed = utils.parseKey(`${type} ${base64}`);
  if (parsed instanceof Error) throw new InvalidInputError('malformed public key');
  if (parsed.type !== type || parsed.isPrivateKey()) throw new InvalidInputError('public key does not match its type');
  const blob = parsed.getPublicSSH();
  // ssh2 reads the fields it needs and ignores trailing bytes; we want the
  // blob on the line to be exactly the key, since that is what clients send.
  if (!blob.equals(Buffer.from(base64, 'base64'))) throw new InvalidInputError('malformed public key');
  if (type === 'ssh-rsa' && rsaModulusBits(blob) < MIN_RSA_BITS) throw new InvalidInputError(`RSA key shorter than ${MIN_RSA_BITS} bits`);
  return parsed;
}

/** OpenSSH-style fingerprint: `SHA256:` + unpadded base64 of SHA-256 over the public key blob. */
export function keyFingerprint(key: ParsedKey | Buffer): string {
  const blob = Buffer.isBuffer(key) ? key : key.getPublicSSH();
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** True iff the key a client offered (ssh2's ctx.key) is this parsed key: same algorithm and same blob. */
export function keyMatches(parsed: ParsedKey, offered: { algo: string; data: Buffer }): boolean {
  const blob = parsed.getPublicSSH();
  // Public keys are not secret; the constant-time compare costs nothing and
  // keeps the code free of "is this one timing-sensitive?" questions.
  return parsed.type === offered.algo && blob.length === offered.data.length && timingSafeEqual(blob, offered.data);
}

/**
 * Verifies an SSH userauth signature. ssh2 has already turned the wire
 * signature into the form node's crypto wants and built `blob` (session id +
 * request); `hashAlgo` is 'sha256'/'sha512' for rsa-sha2-*, undefined for
 * ssh-rsa (SHA-1), ed25519 and ECDSA (whose hash is fixed by the curve).
 * RSA with SHA-1 is refused unless `allowRsaSha1`, as OpenSSH 8.8 does.
 */
export function verifySignature(
  key: { algo: string; data: Buffer },
  blob: Buffer,
  signature: Buffer,
  hashAlgo: string | undefined,
  allowRsaSha1 = false,
): boolean {
  if (!SUPPORTED_KEY_TYPES.has(key.algo)) return false;
  if (key.algo === 'ssh-rsa' && hashAlgo !== 'sha256' && hashAlgo !== 'sha512' && !(allowRsaSha1 && hashAlgo === undefined)) return false;
  try {
    const parsed = utils.parseKey(key.data);
    if (parsed instanceof Error || parsed.type !== key.algo || parsed.isPrivateKey()) return false;
    // ParsedKey.verify returns true, false, or an Error object: only `true` passes.
    return parsed.verify(blob, signature, hashAlgo) === true;
  } catch {
    return false;
  }
}
