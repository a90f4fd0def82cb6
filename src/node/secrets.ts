import { readFile, stat } from 'node:fs/promises';
import ssh2 from '../crypto/ssh2.js';
import { InvalidInputError } from '../errors.js';
import { keyFingerprint } from '../auth/index.js';

const { utils } = ssh2;

/** Bytes of the gateway convergence secret. */
export const CONVERGENCE_SECRET_BYTES = 32;

/** Bound on what is read as a key or secret file: an RSA 16384 private key is ~12 KiB. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

export function formatConvergenceSecret(secret: Uint8Array): string {
  return Buffer.from(secret).toString('hex') + '\n';
}

/** Reads private/convergence.secret; the error names the file, never its content. */
export async function readConvergenceSecret(file: string): Promise<Uint8Array> {
  return readHexSecret(file, 'convergence secret');
}

/** Bytes of the homes secret (private/homes.secret, docs/spec/homes.md): the same size and form as the convergence secret. */
export const HOMES_SECRET_BYTES = 32;

/**
 * Reads the homes secret. A missing file says how to make one, and that every
 * gateway of one system must have the same: a second secret would quietly
 * give every user a second, empty home.
 */
export async function readHomesSecret(file: string): Promise<Uint8Array> {
  try {
    await stat(file);
  } catch {
    throw new InvalidInputError(
      `homes secret file ${file} does not exist: create it once with "openssl rand -hex 32 > ${file}" (mode 0600) and give every gateway of this system the same file`,
    );
  }
  return readHexSecret(file, 'homes secret');
}

async function readHexSecret(file: string, what: string): Promise<Uint8Array> {
  const text = await readSmallFile(file, what);
  const hex = text.trim();
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== CONVERGENCE_SECRET_BYTES * 2) {
    throw new InvalidInputError(`${file}: expected ${CONVERGENCE_SECRET_BYTES * 2} hex digits`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export interface HostKey {
  file: string;
  /** The private key file's bytes, as ssh2's Server wants them. */
  privateKey: Buffer;
  type: string;
  fingerprint: string;
}

/** Reads and parses an OpenSSH (or PEM) private host key. */
export async function readHostKey(file: string): Promise<HostKey> {
  const privateKey = Buffer.from(await readSmallFile(file, 'host key'));
  const parsed = utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error || !key.isPrivateKey()) {
    throw new InvalidInputError(`${file}: not an unencrypted private host key`);
  }
  return { file, privateKey, type: key.type, fingerprint: keyFingerprint(key) };
}

/** Type and fingerprint of an OpenSSH public key file (`TYPE BASE64 [COMMENT]`), or undefined if it is not one. */
export async function readPublicKeyFile(file: string): Promise<{ line: string; type: string; fingerprint: string } | undefined> {
  const text = await readSmallFile(file, 'public key');
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (line === undefined) return undefined;
  const parsed = utils.parseKey(line);
  if (parsed instanceof Error || Array.isArray(parsed) || parsed.isPrivateKey()) return undefined;
  return { line, type: parsed.type, fingerprint: keyFingerprint(parsed) };
}

async function readSmallFile(file: string, what: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidInputError(
      code === 'ENOENT' ? `${what} file ${file} does not exist` : `cannot read ${what} file ${file} (${code ?? 'error'})`,
    );
  }
  if (data.length > MAX_KEY_FILE_BYTES) throw new InvalidInputError(`${what} file ${file} is larger than ${MAX_KEY_FILE_BYTES} bytes`);
  return data.toString('utf8');
}
