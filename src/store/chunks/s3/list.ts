import { throwIfAborted } from '../../../errors.js';
import type { S3Client } from './s3-client.js';
import { parseListObjectsV2, type ListedObject } from './xml.js';

/** A listing page is at most 1,000 keys of ~90 bytes each plus metadata; this leaves ample room. */
const MAX_LIST_BODY = 4 * 1024 * 1024;

export interface ListOptions {
  /** Keys per page (default: the service's, 1,000 on AWS). */
  pageKeys?: number | undefined;
  signal?: AbortSignal | undefined;
  /** How a failure names the listing (`list`, `list packs`). */
  operation: string;
}

/**
 * Every object whose key starts with `prefix`, in key order, page by page
 * (ListObjectsV2). A truncated page is followed by its
 * NextContinuationToken. Some S3 implementations leave the token out
 * (s3ninja, several test servers; AWS's own V1 listing gives no NextMarker
 * without a delimiter): such a page is followed with start-after = its last
 * key, which ListObjectsV2 takes everywhere. A listing that cannot move on
 * (a truncated page with neither a token nor a key, a page after
 * start-after holding a key not past it, the same token twice) is an
 * error, not a loop. Each page is one request, retried on its own by the
 * client.
 */
export async function* listObjects(client: S3Client, prefix: string, options: ListOptions): AsyncGenerator<ListedObject> {
  let next: { token: string } | { after: string } | undefined;
  let previousToken: string | undefined;
  do {
    throwIfAborted(options.signal);
    const query: [string, string][] = [
      ['list-type', '2'],
      ['prefix', prefix],
    ];
    if (options.pageKeys !== undefined) query.push(['max-keys', String(options.pageKeys)]);
    if (next !== undefined) query.push('token' in next ? ['continuation-token', next.token] : ['start-after', next.after]);
    const res = await client.send({
      method: 'GET',
      query,
      maxBodyBytes: MAX_LIST_BODY,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (res.status !== 200) client.fail(res, options.operation);
    const page = parseListObjectsV2(Buffer.from(res.body).toString('utf8'));
    // Keys come in order; the greatest is where a page without a token is followed from.
    let greatest: string | undefined;
    for (const object of page.objects) {
      throwIfAborted(options.signal);
      // A service that ignored start-after would answer the same keys again, forever.
      if (next !== undefined && 'after' in next && object.key <= next.after) {
        throw new Error(`S3 ${options.operation}: the listing did not move past start-after`);
      }
      if (greatest === undefined || object.key > greatest) greatest = object.key;
      yield object;
    }
    if (!page.truncated) return;
    const token = page.nextContinuationToken;
    if (token !== undefined && token !== previousToken) {
      next = { token };
      previousToken = token;
    } else if (token === undefined && greatest !== undefined) {
      next = { after: greatest };
    } else {
      throw new Error(`S3 ${options.operation}: a truncated listing page gave no way to continue`);
    }
  } while (next !== undefined);
}
