import { readFile } from 'node:fs/promises';
import { InvalidInputError, TransientError } from '../../../errors.js';
import type { S3Credentials } from './sigv4.js';

/**
 * Where the S3 store's keys come from, and how they stay current.
 *
 * A source is called before every request is signed (and again for each
 * retry), so it MUST be cheap once it holds credentials and MUST return the
 * current ones: temporary credentials are replaced before they expire, and
 * the next request signs with the new ones. `forceRefresh` asks for fresh
 * credentials at once (S3 said the token expired). A source that cannot get
 * credentials MUST throw TransientError (the request is retried and the
 * source asked again), whose message names no secret.
 */
export type S3CredentialSource = (options?: { forceRefresh?: boolean }) => Promise<S3Credentials>;

/** Where openS3Credentials found the keys: the `s3.credentials` file, or the standard AWS chain. */
export type S3CredentialOrigin = 'file' | 'aws-chain';

export interface OpenS3CredentialsOptions {
  /** The SDK's warnings (a credential source that is about to fail, two sources set); debug output is dropped. */
  warn?: (message: string) => void;
}

/**
 * The S3 store's credentials, first match wins:
 *
 * 1. the credentials file (`[storage] s3.credentials`, default
 *    `private/s3-credentials`) when it exists: static keys, either two lines,
 *    access key id then secret:
 *
 *        AKIAIOSFODNN7EXAMPLE
 *        wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
 *
 *    or INI as in ~/.aws/credentials, whose `[default]` section (or the only
 *    section) is read (with `aws_session_token` if present);
 * 2. otherwise the standard AWS credential chain, as every AWS SDK and the
 *    AWS CLI resolve it (@aws-sdk/credential-provider-node, used as
 *    published): AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN;
 *    the shared files ~/.aws/credentials and ~/.aws/config with AWS_PROFILE
 *    (static keys, role_arn with source_profile, web_identity_token_file,
 *    credential_process, SSO); AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN
 *    (STS AssumeRoleWithWebIdentity: EKS service accounts); the container
 *    endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI: ECS,
 *    EKS Pod Identity); the EC2 instance metadata service (IMDSv2, unless
 *    AWS_EC2_METADATA_DISABLED=true). Temporary credentials are refreshed in
 *    the background from five minutes before they expire.
 *
 * The file wins over the environment, so an operator who wrote it knows
 * which keys are used. The first credentials are fetched here, so a node
 * with none fails at start with one line, not at its first request. Errors
 * never contain the file's text or a key.
 */
export async function openS3Credentials(
  file: string,
  options: OpenS3CredentialsOptions = {},
): Promise<{ source: S3CredentialSource; origin: S3CredentialOrigin }> {
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new InvalidInputError(`cannot read the S3 credentials file ${file} (${code ?? 'error'})`);
  }
  if (text !== undefined) {
    const credentials = parseS3Credentials(text, file);
    return { source: async () => credentials, origin: 'file' };
  }
  const source = await awsCredentialChain(options);
  try {
    await source();
  } catch (err) {
    throw new InvalidInputError(
      `no S3 credentials: ${file} does not exist, and the AWS credential chain (environment, ~/.aws with AWS_PROFILE, ` +
        `web identity, container, instance metadata) found none: ${firstLine((err as Error).cause ?? err)}`,
    );
  }
  return { source, origin: 'aws-chain' };
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message || err.name : String(err);
  return message.split('\n')[0] ?? 'error';
}

/** The SDK's default chain, memoized and refreshed by the SDK itself, as an S3CredentialSource. */
async function awsCredentialChain(options: OpenS3CredentialsOptions): Promise<S3CredentialSource> {
  // The SDK's STS client warns, through process.emitWarning on stderr, that SDK
  // versions published after January 2027 will need Node 22. capstan pins
  // its version (package.json), so an operator can do nothing about it; the
  // SDK's own switch turns it off unless the operator set it.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  // Loaded only when needed: most nodes use the fs store, and the SDK costs start-up time.
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  const warn = options.warn ?? (() => undefined);
  const quiet = (): void => undefined;
  const provider = defaultProvider({
    // The SDK otherwise writes its warnings with console.warn, onto a CLI command's stderr or the gateway's.
    logger: {
      debug: quiet,
      info: quiet,
      warn: (...args: unknown[]) => warn(args.map(String).join(' ').split('\n')[0] ?? ''),
      error: (...args: unknown[]) => warn(args.map(String).join(' ').split('\n')[0] ?? ''),
    },
  });
  return async (request) => {
    try {
      const c = await provider(request?.forceRefresh === true ? { forceRefresh: true } : {});
      const credentials: S3Credentials = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
      if (c.sessionToken !== undefined) credentials.sessionToken = c.sessionToken;
      if (c.expiration !== undefined) credentials.expiration = c.expiration;
      return credentials;
    } catch (err) {
      throw new TransientError(`S3 credentials unavailable: ${firstLine(err)}`, { cause: err });
    }
  };
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
  const [accessKeyId, secretAccessKey, ...more] = lines;
  if (accessKeyId === undefined || secretAccessKey === undefined || more.length > 0)
    throw new InvalidInputError(`${file}: want two lines (access key id, secret access key) or an INI [default] section`);
  return { accessKeyId, secretAccessKey };
}
