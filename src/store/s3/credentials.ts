import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../../errors.js';
import type { S3Credentials } from './sigv4.js';

/**
 * Where the S3 store's keys come from, first match wins:
 *
 * 1. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` in the environment
 *    (plus `AWS_SESSION_TOKEN` if set);
 * 2. the credentials file (`[storage] s3.credentials`, default
 *    `private/s3-credentials`), either two lines, access key id then secret:
 *
 *        AKIAIOSFODNN7EXAMPLE
 *        wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
 *
 *    or INI as in ~/.aws/credentials, whose `[default]` section (or the only
 *    section) is read:
 *
 *        [default]
 *        aws_access_key_id = AKIAIOSFODNN7EXAMPLE
 *        aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
 *
 * Errors never contain the file's text.
 */
export async function loadS3Credentials(file: string, env: NodeJS.ProcessEnv = process.env): Promise<S3Credentials> {
  const id = env['AWS_ACCESS_KEY_ID'];
  const secret = env['AWS_SECRET_ACCESS_KEY'];
  if (id && secret) {
    const token = env['AWS_SESSION_TOKEN'];
    return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(
      `no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
  return parseS3Credentials(text, file);
}

/** Parses the credentials file's text (two-line or INI form). */
export function parseS3Credentials(text: string, file = 's3-credentials'): S3Credentials {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
  if (lines.some((l) => l.startsWith('['))) {
    const sections = new Map<string, Map<string, string>>();
    let current: Map<string, string> | undefined;
    for (const line of lines) {
      const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
      if (header) {
        current = new Map();
        sections.set(header[1]!, current);
        continue;
      }
      const kv = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
      if (kv && current) current.set(kv[1]!.toLowerCase(), kv[2]!);
    }
    const section = sections.get('default') ?? (sections.size === 1 ? [...sections.values()][0] : undefined);
    const id = section?.get('aws_access_key_id');
    const secret = section?.get('aws_secret_access_key');
    if (!id || !secret) throw new InvalidInputError(`${file}: want aws_access_key_id and aws_secret_access_key in [default]`);
    const token = section?.get('aws_session_token');
    return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
  }
  if (lines.length !== 2)
    throw new InvalidInputError(`${file}: want two lines (access key id, secret access key) or an INI [default] section`);
  return { accessKeyId: lines[0]!, secretAccessKey: lines[1]! };
}
