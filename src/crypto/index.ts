export { TAG, type Tag } from './tags.js';
export { netstring, sha256, taggedHash, taggedHmac, u64be } from './kdf.js';
export {
  AeadError,
  sealConvergent,
  openConvergent,
  openConvergentInPlace,
  sealRandomized,
  openRandomized,
  GCM_TAG_BYTES,
  XCHACHA_NONCE_BYTES,
  XCHACHA_TAG_BYTES,
} from './aead.js';
export {
  isSharedForOffload,
  OFFLOAD_MIN_BYTES,
  openConvergentOwned,
  openConvergentShared,
  preadSha256Shared,
  sha256Owned,
  sha256Shared,
} from './offload.js';
export { signingKeyFromSeed, verifySignature, type SigningKey } from './ed25519.js';
export { randomBytes } from './random.js';
export { convergenceSecret, type ConvergenceMode } from './convergence.js';
