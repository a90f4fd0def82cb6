export {
  CAP_PREFIX,
  LITERAL_MAX_BYTES,
  DirectoryWriteCap,
  DirectoryReadCap,
  DirectoryVerifyCap,
  FileReadCap,
  FileVerifyCap,
  LiteralCap,
  UnknownCap,
  isDirectoryCap,
  storageIndexOf,
  type Cap,
  type DirectoryCap,
  type FileCap,
} from './caps.js';
export type { CapBase } from './cap-base.js';
export { parseCap, parseDirectoryCap, CapParseError, MAX_CAP_LENGTH } from './parse.js';
export { encodeBase32, decodeBase32 } from './base32.js';
export { SymlinkTarget, MAX_SYMLINK_TARGET_BYTES, isValidSymlinkTarget } from './symlink.js';
