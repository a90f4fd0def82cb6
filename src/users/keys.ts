import { isKeyTypeToken, parsePublicKey, type ParsedKey } from '../auth/ssh-key.js';

/**
 * Public keys from a user directory: each an authorized_keys line, `TYPE
 * BASE64 [COMMENT]`, read as the accounts file reads them (ssh-key.ts: the
 * types and sizes OpenSSH 9 accepts). A line with authorized_keys options
 * (`restrict,command=… TYPE BASE64`) is dropped: capstan would ignore the
 * options, which is worse than saying so. Each dropped key is reported with
 * a reason that names the fault and its position, never the key.
 */
export function parseDirectoryKeys(lines: readonly unknown[]): { keys: ParsedKey[]; refused: { index: number; reason: string }[] } {
  const keys: ParsedKey[] = [];
  const refused: { index: number; reason: string }[] = [];
  lines.forEach((line, index) => {
    if (typeof line !== 'string') {
      refused.push({ index, reason: 'not a string' });
      return;
    }
    const words = line.trim().split(/\s+/);
    const [type, base64] = words;
    if (type === undefined || base64 === undefined || type === '') {
      refused.push({ index, reason: 'not an OpenSSH public key line' });
      return;
    }
    if (!isKeyTypeToken(type)) {
      refused.push({
        index,
        reason: words.slice(1).some(isKeyTypeToken) ? 'authorized_keys options are not supported' : 'unknown key type',
      });
      return;
    }
    try {
      const key = parsePublicKey(type, base64);
      if (!keys.some((k) => k.equals(key))) keys.push(key);
    } catch (err) {
      refused.push({ index, reason: (err as Error).message });
    }
  });
  return { keys, refused };
}
