import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateSshKeyPair } from './ssh-keygen.js';
import { AlreadyExistsError } from '../errors.js';
import { CONFIG_FILE, formatHostPort, parseConfigText, renderConfigFile, type HostPort } from '../config/index.js';
import { FsChunkStore, LevelSlotStore } from '../store/index.js';
import { CONVERGENCE_SECRET_FILE, HOST_KEY_FILES, PRIVATE_DIR, SPOOL_DIR, nodePath } from './layout.js';
import { CONVERGENCE_SECRET_BYTES, HOMES_SECRET_BYTES, formatConvergenceSecret, readHostKey } from './secrets.js';

/**
 * The accounts file a new node starts with: no accounts, one commented
 * example of each line form (grammar in src/auth/accounts-file.ts).
 */
export const ACCOUNTS_TEMPLATE = `# capstan accounts: who may log in over SFTP, and the root directory each gets.
# Edits take effect without a restart. Blank lines and lines starting with #
# are ignored; every other line is one of:
#
#   USER KEYTYPE BASE64 [COMMENT] ROOTCAP     a public key, as in authorized_keys
#   USER $scrypt$ln=L,r=R,p=P$SALT$HASH ROOTCAP     a password hash (never a plaintext password)
#
# A user may have several key lines and one password line, all naming the same
# ROOTCAP. "capstan account add" writes these lines and creates the root
# directory; "capstan account hash-password" prints a hash for hand editing.
#
# Examples (not real keys or caps):
# alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample alice@laptop CS1:DIR:aaaa...
# bob $scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g CS1:DIR:bbbb...
`;

export interface InitOptions {
  /** [sftpd] listen written into capstan.cfg (default 127.0.0.1:8022). */
  listen?: HostPort;
}

export interface InitResult {
  nodeDir: string;
  listen: HostPort;
  hostKeys: { type: string; fingerprint: string }[];
}

async function writePrivate(file: string, data: string): Promise<void> {
  await writeFile(file, data, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600); // the mode given to open is filtered by the umask
}

async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/**
 * Creates a node directory. Refuses (AlreadyExistsError) a directory that
 * already holds a capstan.cfg or anything else: init never touches an
 * existing node. capstan.cfg is written last, so an init that dies half way
 * leaves a directory that is not mistaken for a node.
 */
export async function initNode(nodeDir: string, options: InitOptions = {}): Promise<InitResult> {
  const dir = path.resolve(nodeDir);
  const existing = await stat(dir).catch(() => undefined);
  if (existing !== undefined) {
    if (!existing.isDirectory()) throw new AlreadyExistsError(`${dir} exists and is not a directory`);
    const entries = await readdir(dir);
    if (entries.includes(CONFIG_FILE)) throw new AlreadyExistsError(`${dir} is already a capstan node; init leaves it alone`);
    if (entries.length > 0) throw new AlreadyExistsError(`${dir} is not empty; init wants a new or empty directory`);
  }
  await makePrivateDir(dir);

  const cfgText = renderConfigFile(options.listen ? { 'sftpd.listen': formatHostPort(options.listen) } : {});
  // Validates the template against the schema, and gives the store paths.
  const config = parseConfigText(dir, cfgText);

  await makePrivateDir(nodePath(dir, PRIVATE_DIR));
  await makePrivateDir(nodePath(dir, SPOOL_DIR));
  const hostKeys: InitResult['hostKeys'] = [];
  for (const [type, relative] of Object.entries(HOST_KEY_FILES)) {
    const pair = generateSshKeyPair(type === 'rsa' ? 'rsa' : 'ed25519');
    const file = nodePath(dir, relative);
    await writePrivate(file, pair.private);
    await writeFile(`${file}.pub`, `${pair.public.trim()} capstan-host-key\n`, { mode: 0o644, flag: 'wx' });
    const key = await readHostKey(file);
    hostKeys.push({ type: key.type, fingerprint: key.fingerprint });
  }
  await writePrivate(nodePath(dir, CONVERGENCE_SECRET_FILE), formatConvergenceSecret(randomBytes(CONVERGENCE_SECRET_BYTES)));
  // Used only with a user directory ([sftpd] users.url); made now so a node never has to invent one while several gateways run.
  await writePrivate(config.sftpd.homesSecretFile, formatConvergenceSecret(randomBytes(HOMES_SECRET_BYTES)));
  await writePrivate(config.sftpd.accountsFile, ACCOUNTS_TEMPLATE);

  const chunks = await FsChunkStore.open(config.storage.fsDir, { fsync: config.storage.fsFsync });
  await chunks.close();
  const slots = await LevelSlotStore.open(config.storage.slotsDir);
  await slots.close();

  await writeFile(path.join(dir, CONFIG_FILE), cfgText, { mode: 0o644, flag: 'wx' });
  return { nodeDir: dir, listen: config.sftpd.listen, hostKeys };
}
