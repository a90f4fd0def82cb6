import { describe, expect, it } from 'vitest';
import { canonicalQuery, EMPTY_SHA256, sha256Hex, signRequest, uriEncode } from '../../src/store/chunks/s3/sigv4.js';

/**
 * The examples of AWS's "Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk" page (Amazon S3 API reference,
 * sig-v4-header-based-auth), with its example credentials.
 */
const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const date = new Date('2013-05-24T00:00:00Z');
const host = 'examplebucket.s3.amazonaws.com';

describe('SigV4 against the AWS documented examples', () => {
  it('GET Object (Range, empty payload hash)', () => {
    const signed = signRequest(
      { method: 'GET', host, path: '/test.txt', headers: { Range: 'bytes=0-9' }, payloadHash: EMPTY_SHA256 },
      credentials,
      'us-east-1',
      date,
    );
    expect(signed.canonicalRequest).toBe(
      [
        'GET',
        '/test.txt',
        '',
        `host:${host}`,
        'range:bytes=0-9',
        `x-amz-content-sha256:${EMPTY_SHA256}`,
        'x-amz-date:20130524T000000Z',
        '',
        'host;range;x-amz-content-sha256;x-amz-date',
        EMPTY_SHA256,
      ].join('\n'),
    );
    expect(signed.stringToSign).toBe(
      'AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972',
    );
    expect(signed.signature).toBe('f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
    expect(signed.headers['authorization']).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  it('PUT Object (signed payload, a `$` in the key, extra headers)', () => {
    const body = 'Welcome to Amazon S3.';
    const payloadHash = sha256Hex(body);
    expect(payloadHash).toBe('44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
    const signed = signRequest(
      {
        method: 'PUT',
        host,
        path: '/test$file.text',
        headers: { Date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY' },
        payloadHash,
      },
      credentials,
      'us-east-1',
      date,
    );
    expect(signed.canonicalRequest.split('\n')[1]).toBe('/test%24file.text');
    expect(signed.signature).toBe('98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd');
  });

  it('GET Bucket lifecycle (a query parameter without a value)', () => {
    const signed = signRequest(
      { method: 'GET', host, path: '/', query: [['lifecycle', '']], payloadHash: EMPTY_SHA256 },
      credentials,
      'us-east-1',
      date,
    );
    expect(signed.signature).toBe('fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
  });

  it('GET Bucket, list objects (query parameters sorted)', () => {
    const signed = signRequest(
      {
        method: 'GET',
        host,
        path: '/',
        query: [
          ['prefix', 'J'],
          ['max-keys', '2'],
        ],
        payloadHash: EMPTY_SHA256,
      },
      credentials,
      'us-east-1',
      date,
    );
    expect(signed.canonicalRequest.split('\n')[2]).toBe('max-keys=2&prefix=J');
    expect(signed.signature).toBe('34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
  });

  it('encodes per RFC 3986 with upper-case hex, keeping / only in paths', () => {
    expect(uriEncode('a b/c~d_e.f-g*h+é', true)).toBe('a%20b/c~d_e.f-g%2Ah%2B%C3%A9');
    expect(uriEncode('a/b', false)).toBe('a%2Fb');
    expect(
      canonicalQuery([
        ['list-type', '2'],
        ['continuation-token', 'x/y='],
      ]),
    ).toBe('continuation-token=x%2Fy%3D&list-type=2');
  });
});
