import { mkdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';

/** Trees with symbolic links for the real-client tests (sshfs-symlinks, integration/symlinks-postgres). */

/** The tree of issue 19: relative, absolute, dangling, escaping links, a directory link and a loop. */
export async function makeLinkTree(src: string, content: Buffer): Promise<Record<string, string>> {
  await mkdir(join(src, 'd'), { recursive: true });
  await writeFile(join(src, 'd', 'f'), content);
  const links: Record<string, string> = {
    link: 'd/f',
    abs: '/d/f',
    dangling: 'no/such/thing',
    evil: '../../etc/passwd',
    dirlink: 'd',
    'd/up': '../d/f',
    loop1: 'loop2',
    loop2: 'loop1',
  };
  for (const [name, target] of Object.entries(links)) await symlink(target, join(src, name));
  return links;
}

/**
 * Reads the links back through the mount. Targets starting with `/` or `..` are skipped there: on
 * this machine sshfs 3.7.3 (libfuse 3.14) answers EPERM to readlink of such links, against OpenSSH's
 * own sftp-server too, although the server returned the target. linkTargetsOverSftp checks them all.
 */
export async function expectLinks(root: string, links: Record<string, string>): Promise<void> {
  for (const [name, target] of Object.entries(links)) {
    if (!target.startsWith('/') && !target.startsWith('..')) expect(await readlink(join(root, name))).toBe(target);
  }
}
