/**
 * Which of SYMLINK's two strings comes first.
 *
 * The draft (draft-ietf-secsh-filexfer-02) sends the new link's path, then
 * its target. OpenSSH's client sends them the other way round, and so do
 * the clients written against its server: sshfs, paramiko, libssh2 (curl,
 * Midnight Commander), JSch, Go's sftp package (rclone, restic), lftp.
 * Every server that works with them reads the target first (OpenSSH's
 * PROTOCOL file, section 4.1), and so does capstan by default.
 *
 * A few clients instead look at the server's identification and keep the
 * draft's order for any server that is not OpenSSH: libssh (KDE's sftp://,
 * Remmina), AsyncSSH, WinSCP and phpseclib (PHP's SFTP library, under
 * Flysystem and Drupal; every release from 1.0 to 3.0 decides so). capstan
 * identifies as itself, so they send
 * it the link first; read the other way, their `ln -s target link` made a
 * link named after the target, pointing at the link's name.
 */
export type SymlinkOrder = 'target-first' | 'link-first';

/**
 * The software field of the client's SSH identification ("SSH-2.0-<software>
 * <comments>") as each of those clients sends it; libssh2 names itself
 * `libssh2_`, which the `libssh_` prefix does not match; phpseclib sends
 * `phpseclib_1.0`, `phpseclib_2.0` or `phpseclib_3.0`.
 */
const LINK_FIRST_CLIENTS = ['libssh_', 'AsyncSSH_', 'WinSCP_', 'phpseclib_'] as const;

/** The order a client whose identification carries `software` sends SYMLINK in. */
export function symlinkOrderOf(software: string): SymlinkOrder {
  return LINK_FIRST_CLIENTS.some((prefix) => software.startsWith(prefix)) ? 'link-first' : 'target-first';
}
