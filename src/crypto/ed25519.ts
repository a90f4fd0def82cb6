import { BoundedCache } from '../util/bounded-cache.js';
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

// node:crypto takes Ed25519 keys only as DER/PEM/JWK; these fixed ASN.1
// prefixes wrap a raw 32-byte seed (PKCS#8) or public key (SPKI).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface SigningKey {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** The Ed25519 key pair for a 32-byte seed (RFC 8032), through node:crypto. */
export function signingKeyFromSeed(seed: Uint8Array): SigningKey {
  if (seed.length !== 32) throw new RangeError('Ed25519 seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32));
  return {
    publicKey,
    sign: (message) => new Uint8Array(sign(null, message, privateKey)),
  };
}

const publicKeyCache = new BoundedCache<string, KeyObject>(1024);

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  return publicKeyCache.getOrSet(Buffer.from(publicKey).toString('hex'), () =>
    createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }),
  );
}

/** True only for a valid signature; never throws for malformed input. */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}
