import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4 for S3, header form (no presigned URLs, no
 * aws-chunked streaming: the payload is signed whole, or declared
 * UNSIGNED-PAYLOAD). Written against the AWS documentation and tested with
 * its published example vectors (test/store/s3-sigv4.test.ts).
 */

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** STS session token, sent (and signed) as x-amz-security-token when present. */
  sessionToken?: string;
  /** When temporary credentials stop working; absent for long-lived keys. */
  expiration?: Date;
}

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface SignableRequest {
  method: string;
  /** Host header value (host, or host:port when the port is not the scheme's default). */
  host: string;
  /** The decoded path, `/` + bucket/key as the case may be; encoded here. */
  path: string;
  /** Decoded query parameters; order does not matter. */
  query?: ReadonlyArray<readonly [string, string]>;
  /** Extra headers to sign (names any case); host, x-amz-date and x-amz-content-sha256 are added. */
  headers?: Readonly<Record<string, string>>;
  /** Hex sha256 of the body, or UNSIGNED_PAYLOAD. */
  payloadHash: string;
}

/**
 * RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9
 * - . _ ~ is encoded, hex in upper case; `/` is kept in paths only.
 */
export function uriEncode(text: string, keepSlash: boolean): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The query string exactly as signed; the request must send this same string. */
export function canonicalQuery(query: ReadonlyArray<readonly [string, string]> = []): string {
  return query
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** 20130524T000000Z */
export function amzDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

const hmac = (key: Uint8Array | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

export interface SignedParts {
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
  /** Every header to send, lower-case names, including authorization. */
  headers: Record<string, string>;
}

/**
 * Signs `request` for `region` and `service` (s3 unless told; the user
 * directory signs for execute-api, API Gateway's IAM authorization) at
 * `date`. Header values are trimmed and inner runs of spaces collapsed, as
 * the canonical form requires.
 */
export function signRequest(request: SignableRequest, credentials: S3Credentials, region: string, date: Date, service = 's3'): SignedParts {
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value.trim().replace(/ +/g, ' ');
  headers['host'] = request.host;
  headers['x-amz-date'] = stamp;
  headers['x-amz-content-sha256'] = request.payloadHash;
  if (credentials.sessionToken !== undefined) headers['x-amz-security-token'] = credentials.sessionToken;

  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    request.method,
    uriEncode(request.path, true),
    canonicalQuery(request.query),
    names.map((n) => `${n}:${headers[n]}\n`).join(''),
    signedHeaders,
    request.payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
  headers['authorization'] =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope},SignedHeaders=${signedHeaders},Signature=${signature}`;
  return { canonicalRequest, stringToSign, signature, headers };
}
