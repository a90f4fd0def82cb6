/**
 * src/sftp: the SFTP frontend (ssh2's server), the only door into a
 * capstan tree for users. Start with startSftpServer; everything else here
 * is its machinery. ssh2 carries the SSH connection; the SFTP packets on the
 * `sftp` subsystem channel are capstan's own (src/sftp/protocol), so ssh2 is
 * used exactly as published.
 */
export {
  startSftpServer,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_IDLE_TIMEOUT_MS,
  type SftpServer,
  type SftpServerOptions,
} from './server.js';
export { GatewayStats } from './stats.js';
export { LEGACY_SCP_MESSAGE, RSYNC_MESSAGE, SFTP_ONLY_MESSAGE } from './ssh-session.js';
export { LIMITS, EXTENSIONS } from './protocol/constants.js';
