/**
 * Plain counters a gateway exposes (the CLI may print or serve them). One
 * instance per server unless the caller shares one across several.
 *
 * - sessionsTotal / sessionsActive count SFTP sessions (an `sftp` subsystem
 *   channel); one SSH connection may open several.
 * - loginsOk / loginsFailed count authentication decisions, not connections:
 *   a client that offers three keys before the right one adds two failures
 *   (a key merely probed and not listed counts as a failure, as in sshd's log);
 *   the initial `none` request is not counted.
 * - bytesIn / bytesOut count file content: WRITE payloads accepted and READ
 *   payloads sent, not SSH framing (connection logs carry socket bytes).
 * - uploadsCommitted / uploadsFailed count new file versions linked by CLOSE
 *   or fsync, and those that failed (the previous version then stays).
 */
export class GatewayStats {
  sessionsTotal = 0;
  sessionsActive = 0;
  loginsOk = 0;
  loginsFailed = 0;
  bytesIn = 0;
  bytesOut = 0;
  uploadsCommitted = 0;
  uploadsFailed = 0;

  snapshot(): Record<string, number> {
    return {
      sessionsTotal: this.sessionsTotal,
      sessionsActive: this.sessionsActive,
      loginsOk: this.loginsOk,
      loginsFailed: this.loginsFailed,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      uploadsCommitted: this.uploadsCommitted,
      uploadsFailed: this.uploadsFailed,
    };
  }
}
