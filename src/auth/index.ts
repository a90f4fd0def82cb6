/** src/auth: who may log in over SFTP, and the root capability each login gets. */
export {
  USER_NAME_RE,
  MAX_LINE_LENGTH,
  defaultValidateCap,
  isValidUserName,
  parseAccountLine,
  formatKeyLine,
  formatPasswordLine,
  formatOptions,
  withOptions,
  NO_OPTIONS,
  ACCOUNT_OPTION_NAMES,
  type AccountOptions,
  type CapValidator,
  type AccountLine,
} from './account-line.js';
export {
  MAX_ACCOUNTS_FILE_BYTES,
  parseAccountsFile,
  type Account,
  type LineError,
  type ParsedAccountsFile,
  type ParseAccountsOptions,
} from './accounts-file.js';
export {
  addAccountLine,
  removeUser,
  setAccountOptions,
  listAccounts,
  type AccountSummary,
  type EditOptions,
  type ListOptions,
} from './accounts-edit.js';
export { AccountsFile, type AccountsFileOptions } from './accounts-watcher.js';
export { applyReload, type ReloadOutcome } from './reload-policy.js';
export { AccountServerClient, type AccountServerOptions } from './account-server.js';
export {
  createAuthenticator,
  type Authenticator,
  type AuthenticatorOptions,
  type AuthAttemptMeta,
  type LoginResult,
  type AccountSource,
  type PasswordAuthority,
} from './authenticator.js';
export {
  hashPassword,
  verifyPassword,
  parsePasswordHash,
  formatPasswordHash,
  dummyPasswordHash,
  DEFAULT_SCRYPT_PARAMS,
  MAX_PASSWORD_BYTES,
  type ScryptParams,
  type ParsedPasswordHash,
} from './password-hash.js';
export { SUPPORTED_KEY_TYPES, parsePublicKey, keyFingerprint, keyMatches, verifySignature, type ParsedKey } from './ssh-key.js';
export { HashLimiter } from './hash-limiter.js';
