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
 * Remmina), AsyncSSH and WinSCP. capstan identifies as itself, so they send
 * it the link first; read the other way, their `ln -s target link` made a
 * link named after the target, pointing at the link's name.
 */
export type SymlinkOrder = 'target-first' | 'link-first';

/**
 * The software field of the client's SSH identification ("SSH-2.0-<software>
 * <comments>") as each of those clients sends it; libssh2 names itself
 * `libssh2_`, which the `libssh_` prefix does not match.
 */
const LINK_FIRST_CLIENTS = ['libssh_', 'AsyncSSH_', 'WinSCP_'] as const;

/** The order a client whose identification carries `software` sends SYMLINK in. */
export function symlinkOrderOf(software: string): SymlinkOrder {
  return LINK_FIRST_CLIENTS.some((prefix) => software.startsWith(prefix)) ? 'link-first' : 'target-first';
}
