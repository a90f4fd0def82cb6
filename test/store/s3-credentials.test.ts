import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { openS3Credentials, type S3CredentialSource } from '../../src/store/s3/credentials.js';
import { S3ChunkStore } from '../../src/store/s3/index.js';
import { type CredentialEndpoints, type IssuedCredentials, startCredentialEndpoints } from '../helpers/aws-credential-endpoints.js';
import { makeTempDir, oneErrorLine, runCli, stopAllCli } from '../helpers/cli.js';
import {
  createBucket,
  type FaultProxy,
  startFaultProxy,
  startSwiftServer,
  stopSwiftServer,
  storeOptions,
  SWIFT_SKIP,
  type SwiftServer,
} from '../helpers/swift.js';

/**
 * Where the S3 store's credentials come from: the s3.credentials file when it
 * exists, else the standard AWS chain (environment, shared files with
 * profiles, web identity through STS, container endpoint, instance
 * metadata), refreshed before expiry. Every credential service is a loopback
 * server (test/helpers/aws-credential-endpoints.ts) that hands out the local
 * Swift's tempauth keys with a session token of its own; a recording proxy in
 * front of Swift shows which key id and token each S3 request was signed
 * with, and Swift checks the signature (which covers the token: tampering
 * with it is refused). Swift's s3api does not validate session tokens
 * itself, hence the proxy. No request leaves loopback: every run points the
 * instance metadata endpoint at a loopback server, and HOME and the AWS
 * files at empty places.
 */

const BUCKET = 'capstan-creds';
let swift: SwiftServer | undefined;
let proxy: FaultProxy;
let endpoints: CredentialEndpoints;
let tmp: { dir: string; cleanup: () => Promise<void> };
let node: string;
/** A loopback port nothing listens on. */
let closedEndpoint: string;
/** How each S3 request reaching Swift was signed. */
let seen: { keyId: string | undefined; token: string | undefined; signed: string[] }[] = [];

/** The proxy's usual hook: notes the key id, the token and the signed headers of each request. */
function record(headers: http.IncomingHttpHeaders): void {
  const auth = headers.authorization ?? '';
  const token = headers['x-amz-security-token'];
  seen.push({
    keyId: /Credential=([^/]+)\//.exec(auth)?.[1],
    token: typeof token === 'string' ? token : undefined,
    signed: /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? [],
  });
}

function issue(sessionToken: string, validMs = 3_600_000): IssuedCredentials {
  return {
    accessKeyId: swift!.accessKeyId,
    secretAccessKey: swift!.secretAccessKey,
    sessionToken,
    expiration: new Date(Date.now() + validMs),
  };
}

/** The CLI's environment: every AWS_* variable of ours removed, nothing to find in HOME, IMDS on a dead loopback port. */
function awsEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) env[key] = undefined;
  return {
    ...env,
    HOME: path.join(tmp.dir, 'home'),
    AWS_CONFIG_FILE: path.join(tmp.dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(tmp.dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_SERVICE_ENDPOINT: closedEndpoint,
    ...extra,
  };
}

/** Runs `capstan mkdir` (writes a directory node to S3) and returns how its requests were signed. */
async function mkdirWith(env: Record<string, string | undefined>): Promise<typeof seen> {
  seen = [];
  endpoints.calls.length = 0;
  const r = await runCli(['-d', node, 'mkdir'], { env });
  if (r.code !== 0) throw new Error(`capstan mkdir failed (${r.code}): ${r.stderr}`);
  expect(r.stdout).toMatch(/^CS1:DIR:/);
  expect(r.stderr).toBe('');
  expect(seen.length).toBeGreaterThan(0);
  return seen;
}

function expectSignedWith(requests: typeof seen, token: string | undefined): void {
  for (const r of requests) {
    expect(r.keyId).toBe(swift!.accessKeyId);
    expect(r.token).toBe(token);
    expect(r.signed.includes('x-amz-security-token')).toBe(token !== undefined);
  }
}

beforeAll(async () => {
  if (SWIFT_SKIP) return;
  swift = await startSwiftServer();
  await createBucket(swift, BUCKET);
  proxy = await startFaultProxy(swift.endpoint);
  proxy.onRequest = record;
  endpoints = await startCredentialEndpoints(() => issue('tok-default'));
  const dead = http.createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  closedEndpoint = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => dead.close(() => resolve()));

  tmp = await makeTempDir('capstan-s3creds-');
  await mkdir(path.join(tmp.dir, 'home'));
  node = path.join(tmp.dir, 'node');
  expect((await runCli(['-d', node, 'init'])).code).toBe(0);
  const cfg = path.join(node, 'capstan.cfg');
  const text = (await readFile(cfg, 'utf8'))
    .replace(/^backend = fs$/m, 'backend = s3')
    .replace(/^s3\.endpoint =.*$/m, `s3.endpoint = ${proxy.endpoint}`)
    .replace(/^s3\.bucket =.*$/m, `s3.bucket = ${BUCKET}`)
    .replace(/^s3\.prefix =.*$/m, `s3.prefix = t-${randomBytes(6).toString('hex')}/`);
  expect(text).toMatch(/^backend = s3$/m);
  await writeFile(cfg, text);
}, 60_000);
afterAll(async () => {
  await stopAllCli();
  await proxy?.close();
  await endpoints?.close();
  await stopSwiftServer(swift);
  await tmp?.cleanup();
});

describe.skipIf(SWIFT_SKIP)('S3 credentials: the file, then the standard AWS chain', () => {
  afterEach(() => {
    endpoints.next = () => issue('tok-default');
    proxy.onRequest = record;
  });

  it('environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, the token signed', async () => {
    const requests = await mkdirWith(
      awsEnv({ AWS_ACCESS_KEY_ID: swift!.accessKeyId, AWS_SECRET_ACCESS_KEY: swift!.secretAccessKey, AWS_SESSION_TOKEN: 'tok-env' }),
    );
    expectSignedWith(requests, 'tok-env');
    expect(endpoints.calls).toEqual([]);
  });

  it('shared credentials file with a profile chosen by AWS_PROFILE', async () => {
    const file = path.join(tmp.dir, 'aws-credentials');
    await writeFile(
      file,
      `[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n[capstan]\naws_access_key_id = ${swift!.accessKeyId}\n` +
        `aws_secret_access_key = ${swift!.secretAccessKey}\naws_session_token = tok-profile\n`,
    );
    expectSignedWith(await mkdirWith(awsEnv({ AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'capstan' })), 'tok-profile');
    expect(endpoints.calls).toEqual([]);
  });

  it('web identity token file and role: STS AssumeRoleWithWebIdentity on loopback', async () => {
    const tokenFile = path.join(tmp.dir, 'web-identity-token');
    await writeFile(tokenFile, endpoints.webIdentityToken);
    endpoints.next = () => issue('tok-web-identity');
    const requests = await mkdirWith(
      awsEnv({
        AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
        AWS_ROLE_ARN: endpoints.roleArn,
        AWS_ROLE_SESSION_NAME: 'capstan-test',
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_STS: endpoints.stsEndpoint,
      }),
    );
    expectSignedWith(requests, 'tok-web-identity');
    expect(endpoints.calls).toEqual(['STS AssumeRoleWithWebIdentity']);
  });

  it('container credentials endpoint (ECS, EKS Pod Identity) with its authorization token', async () => {
    endpoints.next = () => issue('tok-container');
    const requests = await mkdirWith(
      awsEnv({
        AWS_CONTAINER_CREDENTIALS_FULL_URI: endpoints.containerUri,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: endpoints.containerAuthorization,
      }),
    );
    expectSignedWith(requests, 'tok-container');
    expect(endpoints.calls).toEqual(['GET /container/credentials']);
  });

  it('EC2 instance metadata, IMDSv2: a session token first, then the role and its credentials', async () => {
    endpoints.next = () => issue('tok-imds');
    expectSignedWith(await mkdirWith(awsEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoints.imdsEndpoint })), 'tok-imds');
    expect(endpoints.calls).toEqual([
      'PUT /latest/api/token',
      'GET /latest/meta-data/iam/security-credentials/',
      'GET /latest/meta-data/iam/security-credentials/capstan-node-role',
    ]);
  });

  it('the s3.credentials file, when it exists, wins over everything else', async () => {
    const file = path.join(node, 'private/s3-credentials');
    await writeFile(file, `${swift!.accessKeyId}\n${swift!.secretAccessKey}\n`, { mode: 0o600 });
    try {
      const requests = await mkdirWith(
        awsEnv({ AWS_ACCESS_KEY_ID: 'nobody', AWS_SECRET_ACCESS_KEY: 'wrong', AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoints.imdsEndpoint }),
      );
      expectSignedWith(requests, undefined);
      expect(endpoints.calls).toEqual([]);
    } finally {
      await rm(file);
    }
  });

  it('no credentials anywhere: one line naming the file and the chain, no request to S3', async () => {
    seen = [];
    const r = await runCli(['-d', node, 'status'], { env: awsEnv() });
    expect(r.code).toBe(1);
    expect(oneErrorLine(r)).toMatch(
      /^capstan: no S3 credentials: \S+private\/s3-credentials does not exist, and the AWS credential chain .* found none: /,
    );
    expect(seen).toEqual([]);
  });

  it('the session token is part of the signature: Swift refuses a request whose token was changed on the way', async () => {
    // afterEach puts the recorder back.
    proxy.onRequest = (headers) => {
      headers['x-amz-security-token'] = 'tok-tampered';
    };
    const r = await runCli(['-d', node, 'mkdir'], {
      env: awsEnv({ AWS_ACCESS_KEY_ID: swift!.accessKeyId, AWS_SECRET_ACCESS_KEY: swift!.secretAccessKey, AWS_SESSION_TOKEN: 'tok-env' }),
    });
    expect(r.code).toBe(1);
    expect(oneErrorLine(r)).toMatch(/HTTP 403/);
  });
});

describe.skipIf(SWIFT_SKIP)('S3 credentials: refresh', () => {
  const saved: Record<string, string | undefined> = {};
  beforeAll(() => {
    // The SDK reads process.env; this file runs in a process of its own (vitest forks).
    for (const [k, v] of Object.entries(awsEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoints.imdsEndpoint }))) {
      saved[k] = process.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('temporary credentials are replaced before they expire, and requests sign with the new ones', async () => {
    // Valid 5 minutes and 1.5 seconds: inside the SDK's five-minute refresh margin within 1.5 s.
    let issued = 0;
    endpoints.next = () => (++issued === 1 ? issue('tok-first', 301_500) : issue('tok-second'));
    const { source, origin } = await openS3Credentials(path.join(tmp.dir, 'no-such-file'));
    expect(origin).toBe('aws-chain');
    const store = new S3ChunkStore({ ...storeOptions(swift!, BUCKET), endpoint: proxy.endpoint, credentials: source });
    try {
      seen = [];
      await store.put(randomBytes(100));
      expect(seen.at(-1)?.token).toBe('tok-first');
      await vi.waitFor(
        async () => {
          await store.put(randomBytes(100));
          expect(seen.at(-1)?.token).toBe('tok-second');
        },
        { timeout: 30_000, interval: 250 },
      );
      // Every request in between was signed with one or the other, and accepted.
      expect(new Set(seen.map((r) => r.token))).toEqual(new Set(['tok-first', 'tok-second']));
      expect(issued).toBe(2);
    } finally {
      await store.close();
    }
  });
});

describe('S3 credentials: an expired token answer', () => {
  it('makes the client ask for fresh credentials and retry (fault injection: a fake S3 that answers ExpiredToken once)', async () => {
    let requests = 0;
    const tokens: (string | undefined)[] = [];
    const fake = http.createServer((req, res) => {
      req.resume();
      requests++;
      const token = req.headers['x-amz-security-token'];
      tokens.push(typeof token === 'string' ? token : undefined);
      if (requests === 1) {
        res.writeHead(400, { 'content-type': 'application/xml' }).end('<Error><Code>ExpiredToken</Code><Message>x</Message></Error>');
      } else {
        res.writeHead(200, { etag: '"x"' }).end();
      }
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    let generation = 1;
    const forced: boolean[] = [];
    const source: S3CredentialSource = async (options) => {
      forced.push(options?.forceRefresh === true);
      if (options?.forceRefresh) generation++;
      return { accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: `tok-${generation}` };
    };
    const store = new S3ChunkStore({
      endpoint: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`,
      region: 'us-east-1',
      bucket: 'b',
      credentials: source,
      retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 },
    });
    try {
      await store.put(randomBytes(100));
      expect(tokens).toEqual(['tok-1', 'tok-2']);
      expect(forced).toEqual([false, true, false]);
    } finally {
      await store.close();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });
});
