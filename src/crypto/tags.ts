/**
 * Every hash and key-derivation tag capstan uses, in one place.
 *
 * Each tag carries the format version. Changing a tag changes every derived
 * key and address, so a tag is frozen once a format version ships; a new
 * format gets new tags (v2), and readers keep the old ones to read old data.
 * The test vectors in test/vectors/ hold these to the code.
 */
export const TAG = {
  // Directories (mutable, signed). Derivation chain: write secret → signing seed,
  // read key; public key → storage index. See docs/spec/caps.md.
  dirSigningSeed: 'capstan-v1:dir:signing-seed',
  dirReadKey: 'capstan-v1:dir:read-key',
  dirStorageIndex: 'capstan-v1:dir:storage-index',
  dirNodeKey: 'capstan-v1:dir:node-key',
  dirNameHashKey: 'capstan-v1:dir:name-hash-key',
  dirChildWriteCapKey: 'capstan-v1:dir:child-writecap-key',
  slotSignature: 'capstan-v1:slot:signature',
  /** Slot record v2 (sealed versions); see docs/spec/slots.md. */
  slotSignatureV2: 'capstan-v2:slot:signature',

  // Immutable files (convergent). See docs/spec/files.md.
  chunkKey: 'capstan-v1:chk:chunk-key',
  manifestKey: 'capstan-v1:chk:manifest-key',
  manifestVerifyKey: 'capstan-v1:chk:manifest-verify-key',
  /** Manifest v2 (a smaller checksum set); see docs/spec/files.md. */
  manifestKeyV2: 'capstan-v2:chk:manifest-key',

  // Convergence domains. See docs/spec/threat-model.md.
  convergenceAccount: 'capstan-v1:convergence:account',
  convergenceGateway: 'capstan-v1:convergence:gateway',

  // Homes created on first login, kept in the slot store. See docs/spec/homes.md.
  homeIndexKey: 'capstan-v1:home:index-key',
  homeSealKey: 'capstan-v1:home:seal-key',
  homeSlotPrefix: 'capstan-v1:home:slot-prefix',
  homeSlot: 'capstan-v1:home:slot',
  homeRecord: 'capstan-v1:home:record',
  homeCheck: 'capstan-v1:home:check',
  /** Storage index of the slot that says which period's scheduled snapshots were taken (docs/spec/snapshots.md). */
  snapshotSchedule: 'capstan-v1:snapshots:schedule',
} as const;

export type Tag = (typeof TAG)[keyof typeof TAG];
