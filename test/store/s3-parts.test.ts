import { describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { parseS3Credentials } from '../../src/store/chunks/s3/credentials.js';
import { withRetry } from '../../src/util/backoff.js';
import { S3Client } from '../../src/store/chunks/s3/s3-client.js';
import { Semaphore } from '../../src/util/semaphore.js';
import { decodeXmlText, errorCode, parseListObjectsV2 } from '../../src/store/chunks/s3/xml.js';

describe('withRetry', () => {
  it('retries TransientError with jittered exponential backoff, then throws the last one', async () => {
    const delays: number[] = [];
    let calls = 0;
    const started = Date.now();
    const err = await withRetry(
      async () => {
        calls++;
        throw new TransientError('down');
      },
      { retries: 3, initialMs: 10, maxMs: 25 },
      undefined,
      () => {
        delays.push(delays.length);
        return 0.999;
      },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TransientError' });
    expect(calls).toBe(4);
    // Caps 10, 20, 25 (capped); equal jitter sleeps at cap/2 + 0.999 × cap/2.
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
  });

  it('does not retry other errors, and succeeds after transient ones', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw new Error('bug');
        },
        { retries: 5, initialMs: 1, maxMs: 1 },
      ),
    ).rejects.toThrow('bug');
    expect(calls).toBe(1);
    calls = 0;
    const value = await withRetry(async () => (++calls < 3 ? Promise.reject(new TransientError('x')) : 'ok'), {
      retries: 5,
      initialMs: 1,
      maxMs: 1,
    });
    expect(value).toBe('ok');
  });

  it('an abort during the backoff sleep is AbortError', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await expect(
      withRetry(
        async () => {
          throw new TransientError('x');
        },
        { retries: 5, initialMs: 10_000, maxMs: 10_000 },
        controller.signal,
        () => 1,
      ),
    ).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('Semaphore', () => {
  it('admits at most `limit` holders, FIFO, and an aborted waiter leaves the queue', async () => {
    const sem = new Semaphore(2);
    const a = await sem.acquire();
    const b = await sem.acquire();
    const order: string[] = [];
    const c = sem.acquire().then((r) => (order.push('c'), r));
    const controller = new AbortController();
    const d = sem.acquire(controller.signal);
    const e = sem.acquire().then((r) => (order.push('e'), r));
    controller.abort();
    await expect(d).rejects.toMatchObject({ name: 'AbortError' });
    expect(sem.inUse).toBe(2);
    a();
    a(); // a second release is a no-op
    (await c)();
    b();
    (await e)();
    expect(order).toEqual(['c', 'e']);
    expect(sem.inUse).toBe(0);
  });
});

describe('S3 XML', () => {
  it('parses a ListObjectsV2 page with entities, LastModified when given, and a continuation token', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>
<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>a&amp;b=</NextContinuationToken>
<Contents><Key>p/a&lt;1&#62;</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>10</Size></Contents>
<Contents><Key>p/b</Key><Size>0</Size></Contents></ListBucketResult>`;
    expect(parseListObjectsV2(xml)).toEqual({
      objects: [
        { key: 'p/a<1>', size: 10, modifiedMs: Date.UTC(2024, 0, 1) },
        { key: 'p/b', size: 0 },
      ],
      truncated: true,
      nextContinuationToken: 'a&b=',
    });
  });

  it('refuses malformed entries and other documents; a truncated page may come without a token (list.ts follows it)', () => {
    expect(parseListObjectsV2('<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>')).toEqual({
      objects: [],
      truncated: true,
    });
    expect(() => parseListObjectsV2('<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>')).toThrow();
    expect(() => parseListObjectsV2('<Error><Code>AccessDenied</Code></Error>')).toThrow();
    expect(parseListObjectsV2('<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>')).toEqual({
      objects: [],
      truncated: false,
    });
  });

  it('never expands anything but the predefined and numeric entities', () => {
    expect(decodeXmlText('&xxe; &amp;lt; &#x110000; &#65;')).toBe('&xxe; &lt; &#x110000; A');
    expect(errorCode('<Error><Code>SignatureDoesNotMatch</Code></Error>')).toBe('SignatureDoesNotMatch');
    expect(errorCode('<Error><Code>no spaces allowed</Code></Error>')).toBeUndefined();
  });
});

describe('S3 credentials', () => {
  it('reads the two-line and the INI form', () => {
    expect(parseS3Credentials('AKID\nSECRET\n')).toEqual({ accessKeyId: 'AKID', secretAccessKey: 'SECRET' });
    expect(
      parseS3Credentials('[other]\naws_access_key_id = X\n[default]\naws_access_key_id = AKID\naws_secret_access_key = S/E=CRET\n'),
    ).toEqual({
      accessKeyId: 'AKID',
      secretAccessKey: 'S/E=CRET',
    });
  });

  it('refuses anything else without echoing it', () => {
    for (const text of ['only-one-line', 'a\nb\nc', '[default]\naws_access_key_id = secretish']) {
      const err = (() => {
        try {
          parseS3Credentials(text);
        } catch (e) {
          return e as Error;
        }
        return undefined;
      })();
      expect(err).toMatchObject({ name: 'InvalidInputError' });
      expect(err!.message).not.toContain('secretish');
    }
  });
  // Which source wins (the file, then the AWS chain): test/store/s3-credentials.test.ts.
});

describe('S3Client addressing', () => {
  const base = {
    region: 'us-east-1',
    bucket: 'chunks',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    concurrency: 1,
    timeoutMs: 1000,
    retry: { retries: 0, initialMs: 1, maxMs: 1 },
  };
  it('path style puts the bucket in the path, virtual style in the host', async () => {
    const path = new S3Client({ ...base, endpoint: 'http://127.0.0.1:9000', addressing: 'path' });
    expect([path.host, path.basePath]).toEqual(['127.0.0.1:9000', '/chunks']);
    const virtual = new S3Client({ ...base, endpoint: 'https://s3.eu-west-1.amazonaws.com', addressing: 'virtual' });
    expect([virtual.host, virtual.basePath]).toEqual(['chunks.s3.eu-west-1.amazonaws.com', '']);
    const mounted = new S3Client({ ...base, endpoint: 'http://gw.example/s3/', addressing: 'path' });
    expect([mounted.host, mounted.basePath]).toEqual(['gw.example', '/s3/chunks']);
    await Promise.all([path.close(), virtual.close(), mounted.close()]);
  });
});
