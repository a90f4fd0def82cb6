import { enumType, intType, optionalUrlType, pathType, stringType, type ConfigKey, type ValueType } from './types.js';

/**
 * The `users.*` keys of [sftpd]: a central user directory asked at login
 * about users not in the accounts file (src/users; docs/operations.md has a
 * section per contract). Kept here so the schema file only lists them.
 */

function key<T>(type: ValueType<T>, def: string, description: string): ConfigKey<T> {
  return { type, default: def, description };
}

export const USER_DIRECTORY_FORMATS = ['localega', 'aws-transfer'] as const;
export const USER_DIRECTORY_AUTH = ['none', 'basic', 'bearer', 'aws-sigv4'] as const;

export const USERS_KEYS = {
  'users.url': key(
    optionalUrlType,
    '',
    'Central user directory asked about key and password logins of users not in the accounts file (users.format says which contract; see docs/operations.md). Their homes are created on first login. Empty: off. Not together with accounts.url.',
  ),
  'users.format': key(
    enumType(USER_DIRECTORY_FORMATS),
    'localega',
    'localega: GET users.url with the name in place of %s (or appended), a JSON record with passwordHash and sshPublicKeys. aws-transfer: an AWS Transfer Family custom identity provider (API Gateway form), users.url being its invoke URL.',
  ),
  'users.auth': key(
    enumType(USER_DIRECTORY_AUTH),
    'none',
    "capstan's own credentials for the directory, read from users.credentials: basic (one line USER:PASSWORD, LocalEGA's cega_creds), bearer (one line, a token), aws-sigv4 (an AWS access key as for s3.credentials; signs for API Gateway's IAM authorization).",
  ),
  'users.credentials': key(
    pathType,
    'private/users-credentials',
    'File with the credentials users.auth names, relative to the node directory.',
  ),
  'users.aws.server_id': key(
    stringType,
    '',
    'The {serverId} path segment the identity provider expects (users.format = aws-transfer; required there).',
  ),
  'users.aws.region': key(stringType, 'us-east-1', 'Region the SigV4 signature is made for (users.auth = aws-sigv4).'),
  'users.timeout': key(intType(1, 300, 'seconds'), '10', 'Timeout of one lookup (connect, send, answer).'),
  'users.cache_ttl': key(
    intType(0, 86_400, 'seconds'),
    '3600',
    'How long a user found is remembered (a changed key or password takes effect after at most this long). In memory: a restart clears it.',
  ),
  'users.negative_ttl': key(
    intType(0, 3600, 'seconds'),
    '30',
    'How long a user not found, or a lookup that failed, is remembered (0: not at all): bounds the requests a flood of one name costs.',
  ),
  'users.max_lookups': key(
    intType(1, 1000),
    '16',
    'Lookups in flight at once; a login that would need one more is refused at once (unscored), not queued.',
  ),
  'users.homes_secret': key(
    pathType,
    'private/homes.secret',
    'The secret that names and seals the homes in the slot store (docs/spec/homes.md), relative to the node directory. Every gateway of one system needs the same file.',
  ),
} as const;
