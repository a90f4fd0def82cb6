import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The three AWS credential services, answering on 127.0.0.1 as the real ones
 * do, for tests of the S3 credential chain: the EC2 instance metadata
 * service (IMDSv2: a PUT for a session token, then GETs carrying it), the
 * ECS/EKS container credentials endpoint (a GET with an Authorization
 * token) and STS AssumeRoleWithWebIdentity (a form POST answered in XML).
 * The SDK is pointed here by its documented variables:
 * AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_CONTAINER_CREDENTIALS_FULL_URI and
 * AWS_ENDPOINT_URL_STS. Each hands out `next()`'s credentials and records
 * the calls it saw.
 */

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export interface CredentialEndpoints {
  /** http://127.0.0.1:PORT */
  base: string;
  imdsEndpoint: string;
  containerUri: string;
  stsEndpoint: string;
  /** What the container endpoint requires in Authorization. */
  containerAuthorization: string;
  /** The web identity token STS accepts, and the role it lets assume. */
  webIdentityToken: string;
  roleArn: string;
  /** Calls as `METHOD path` (IMDS, container) or `STS Action`. */
  calls: string[];
  /** Credentials to hand out next; the test replaces it to rotate them. */
  next: () => IssuedCredentials;
  close(): Promise<void>;
}

const IMDS_TOKEN = 'imds-session-token-1';
const ROLE = 'capstan-node-role';

function sts(c: IssuedCredentials): string {
  return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:capstan:gateway</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/capstan/gateway</Arn>
      <AssumedRoleId>AROA0000000000EXAMPLE:gateway</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${c.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${c.secretAccessKey}</SecretAccessKey>
      <SessionToken>${c.sessionToken}</SessionToken>
      <Expiration>${c.expiration.toISOString()}</Expiration>
    </Credentials>
    <Audience>sts.amazonaws.com</Audience>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`;
}

export async function startCredentialEndpoints(next: () => IssuedCredentials): Promise<CredentialEndpoints> {
  const endpoints: CredentialEndpoints = {
    base: '',
    imdsEndpoint: '',
    containerUri: '',
    stsEndpoint: '',
    calls: [],
    next,
    containerAuthorization: 'container-auth-token-1',
    webIdentityToken: 'eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl',
    roleArn: 'arn:aws:iam::123456789012:role/capstan',
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const url = req.url ?? '/';
      const deny = (status: number): void => {
        res.writeHead(status).end();
      };
      // IMDSv2: no token, no answer (as with HttpTokens=required).
      if (url === '/latest/api/token') {
        endpoints.calls.push(`${req.method} ${url}`);
        if (req.method !== 'PUT' || req.headers['x-aws-ec2-metadata-token-ttl-seconds'] === undefined) return deny(400);
        res.writeHead(200, { 'content-type': 'text/plain' }).end(IMDS_TOKEN);
        return;
      }
      if (url.startsWith('/latest/meta-data/iam/security-credentials/')) {
        endpoints.calls.push(`${req.method} ${url}`);
        if (req.headers['x-aws-ec2-metadata-token'] !== IMDS_TOKEN) return deny(401);
        const role = url.slice('/latest/meta-data/iam/security-credentials/'.length);
        if (role === '') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end(ROLE);
          return;
        }
        if (role !== ROLE) return deny(404);
        const c = endpoints.next();
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            Code: 'Success',
            LastUpdated: new Date().toISOString(),
            Type: 'AWS-HMAC',
            AccessKeyId: c.accessKeyId,
            SecretAccessKey: c.secretAccessKey,
            Token: c.sessionToken,
            Expiration: c.expiration.toISOString(),
          }),
        );
        return;
      }
      if (url === '/container/credentials') {
        endpoints.calls.push(`${req.method} ${url}`);
        if (req.headers.authorization !== endpoints.containerAuthorization) return deny(401);
        const c = endpoints.next();
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            AccessKeyId: c.accessKeyId,
            SecretAccessKey: c.secretAccessKey,
            Token: c.sessionToken,
            Expiration: c.expiration.toISOString(),
            RoleArn: endpoints.roleArn,
          }),
        );
        return;
      }
      if (url.startsWith('/sts') && req.method === 'POST') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        endpoints.calls.push(`STS ${form.get('Action')}`);
        if (
          form.get('Action') !== 'AssumeRoleWithWebIdentity' ||
          form.get('RoleArn') !== endpoints.roleArn ||
          form.get('WebIdentityToken') !== endpoints.webIdentityToken
        ) {
          res
            .writeHead(400, { 'content-type': 'text/xml' })
            .end('<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>no</Message></Error></ErrorResponse>');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/xml' }).end(sts(endpoints.next()));
        return;
      }
      endpoints.calls.push(`${req.method} ${url} (unexpected)`);
      deny(404);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  endpoints.base = base;
  endpoints.imdsEndpoint = base;
  endpoints.containerUri = `${base}/container/credentials`;
  endpoints.stsEndpoint = `${base}/sts`;
  endpoints.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return endpoints;
}
