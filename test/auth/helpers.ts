import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { createLogger, type Logger } from '../../src/log.js';

const { utils } = ssh2;

/** Obviously fake caps that pass the default validator. */
export const CAP_A = 'CS1:DIR:exampleAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
export const CAP_B = 'CS1:DIR-RO:exampleBBBBBBBBBBBBBBBBBBBBBBB:exampleBBBBBBBB';
export const CAP_C = 'CS1:DIR:exampleCCCCCCCCCCCCCCCCCCCCCCCCCCCC';

export interface TestKey {
  /** `TYPE BASE64 COMMENT`, as in authorized_keys */
  publicLine: string;
  type: string;
  base64: string;
  private: ssh2.ParsedKey;
  /** The private key as generated (OpenSSH format), for clients to load. */
  privateText: string;
  public: ssh2.ParsedKey;
}

export function makeKey(kind: 'ed25519' | 'rsa' | 'ecdsa256' | 'ecdsa384' | 'ecdsa521', comment = 'test@host'): TestKey {
  const pair =
    kind === 'ed25519'
      ? generateSshKeyPair('ed25519', { comment })
      : kind === 'rsa'
        ? generateSshKeyPair('rsa', { bits: 2048, comment })
        : generateSshKeyPair('ecdsa', { bits: Number(kind.slice(5)), comment });
  const priv = utils.parseKey(pair.private);
  const pub = utils.parseKey(pair.public);
  if (priv instanceof Error || pub instanceof Error) throw new Error('test key generation failed');
  const [type, base64] = pair.public.trim().split(/\s+/) as [string, string];
  return { publicLine: pair.public.trim(), type, base64, private: priv, privateText: pair.private, public: pub };
}

/** A logger whose JSON lines land in `lines`, so tests can check what was (and was not) logged. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[]; text: () => string } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('debug', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines, text: () => lines.map((l) => JSON.stringify(l)).join('\n') };
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'capstan-auth-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
