/** src/users: central user directories (LocalEGA, AWS Transfer custom identity providers) asked at login. */
import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../log.js';
import { openS3Credentials } from '../store/s3/credentials.js';
import { AwsTransferDirectory } from './aws-transfer.js';
import { CachedUserDirectory } from './cached.js';
import { JsonClient, type DirectoryAuth } from './http-json.js';
import { LimitedUserDirectory } from './limited.js';
import { LocalEgaDirectory } from './localega.js';

export type { DirectoryFormat, HomeSource, Lookup, LookupRequest, UserDirectory, UserRecord } from './directory.js';
export { AwsTransferDirectory, type AwsTransferOptions } from './aws-transfer.js';
export { CachedUserDirectory, type CacheOptions, type Knowledge } from './cached.js';
export { JsonClient, type DirectoryAuth, type JsonAnswer, type JsonClientOptions } from './http-json.js';
export { LimitedUserDirectory } from './limited.js';
export { LocalEgaDirectory, type LocalEgaOptions } from './localega.js';
export { parseDirectoryKeys } from './keys.js';

export interface UserDirectorySettings {
  url: string;
  format: 'localega' | 'aws-transfer';
  auth: 'none' | 'basic' | 'bearer' | 'aws-sigv4';
  credentialsFile: string;
  awsServerId: string;
  awsRegion: string;
  timeoutMs: number;
  cacheTtlMs: number;
  negativeTtlMs: number;
  maxLookups: number;
}

/** The first line of a small secret file; errors name the file, never its content. */
async function firstLine(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`users.auth needs ${what} in ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const line = (text.split(/\r?\n/, 1)[0] ?? '').trim();
  if (line === '') throw new InvalidInputError(`${file}: the first line should hold ${what}`);
  return line;
}

export async function loadDirectoryAuth(
  settings: Pick<UserDirectorySettings, 'auth' | 'credentialsFile' | 'awsRegion'>,
): Promise<DirectoryAuth> {
  switch (settings.auth) {
    case 'none':
      return { kind: 'none' };
    case 'basic': {
      const line = await firstLine(settings.credentialsFile, 'USER:PASSWORD');
      const colon = line.indexOf(':');
      if (colon <= 0) throw new InvalidInputError(`${settings.credentialsFile}: the first line should be USER:PASSWORD`);
      return { kind: 'basic', user: line.slice(0, colon), password: line.slice(colon + 1) };
    }
    case 'bearer':
      return { kind: 'bearer', token: await firstLine(settings.credentialsFile, 'a token') };
    case 'aws-sigv4':
      return { kind: 'aws-sigv4', credentials: (await openS3Credentials(settings.credentialsFile)).source, region: settings.awsRegion };
  }
}

/**
 * The configured user directory, wrapped: the contract over HTTP, behind the
 * bound on lookups in flight, behind the TTL cache (so cache hits cost
 * nothing and never count against the bound).
 */
export async function openUserDirectory(settings: UserDirectorySettings, logger: Logger): Promise<CachedUserDirectory> {
  const log = logger.child({ component: 'users', format: settings.format });
  const client = new JsonClient({
    auth: await loadDirectoryAuth(settings),
    timeoutMs: settings.timeoutMs,
    connections: settings.maxLookups,
  });
  const contract =
    settings.format === 'aws-transfer'
      ? new AwsTransferDirectory({ url: settings.url, serverId: settings.awsServerId, client, logger: log })
      : new LocalEgaDirectory({ url: settings.url, client, logger: log });
  return new CachedUserDirectory(new LimitedUserDirectory(contract, settings.maxLookups), {
    ttlMs: settings.cacheTtlMs,
    negativeTtlMs: settings.negativeTtlMs,
  });
}
