import { IntegrityError, InvalidInputError, NotFoundError, throwIfAborted, type AbortOptions } from '../../../errors.js';
import { addressFromName, addressOf, assertChunkAddress, MAX_CHUNK_BYTES, verifyOwnedChunk } from '../../address.js';
import type { ChunkAddress, ChunkStat, ChunkStore, ChunkStoreFeatures } from '../chunk-store.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../../util/backoff.js';
import { S3Client, type S3Addressing } from './s3-client.js';
import type { S3CredentialSource } from './credentials.js';
import type { S3Credentials } from './sigv4.js';
import { listObjects } from './list.js';

export interface S3ChunkStoreOptions {
  endpoint: string;
  region: string;
  bucket: string;
  /** Prepended to every key, e.g. `capstan/`; empty for the bucket's root. */
  prefix?: string;
  addressing?: S3Addressing;
  /** Fixed keys, or a source of current ones (openS3Credentials). */
  credentials: S3Credentials | S3CredentialSource;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Timeout of each attempt, ms (default 30 s). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Keys per ListObjectsV2 page (default and maximum 1000; tests use fewer to exercise paging). */
  listPageKeys?: number;
}

const LIST_PAGE_KEYS = 1000;

/**
 * Chunks as objects in an S3 bucket (AWS, MinIO, Ceph RGW, Swift s3api).
 *
 * Layout (format v1, the fs store's sharding):
 *
 *     <prefix>chunks/<a>/<b>/<cid>   one object per chunk, exactly the chunk bytes
 *
 * with `<a>`, `<b>` as in FsChunkStore (the two base32 characters before the
 * last, then the two before those), which spreads keys over 2^20 prefixes
 * for services that partition request rate by prefix.
 *
 * put is a single PUT with the payload's sha256 (which is the address's
 * digest, so signing it costs nothing); S3 PUTs are atomic, so a reader never
 * sees part of an object, and putting the same bytes twice rewrites identical
 * bytes (idempotent; on a versioned bucket it adds a version). get re-hashes
 * every object (verifyChunk) and refuses bodies over MAX_CHUNK_BYTES; has is
 * HEAD; delete is DELETE (404 is fine: idempotent); list and usage page
 * through ListObjectsV2 with continuation tokens.
 *
 * Bounds: `concurrency` requests in flight (the rest wait in the client's
 * semaphore), one chunk and one listing page in memory per request.
 * Transient failures (5xx, 429, resets, timeouts) are retried by the client
 * and surface as TransientError after the last retry; other 4xx answers are
 * S3ResponseError (a configuration problem: wrong bucket, region or keys).
 */
export class S3ChunkStore implements ChunkStore {
  readonly features: ChunkStoreFeatures = { delete: true, list: true };
  readonly client: S3Client;
  readonly prefix: string;
  private readonly listPageKeys: number;

  constructor(options: S3ChunkStoreOptions) {
    this.prefix = options.prefix ?? '';
    this.listPageKeys = Math.max(1, Math.min(LIST_PAGE_KEYS, options.listPageKeys ?? LIST_PAGE_KEYS));
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      bucket: options.bucket,
      addressing: options.addressing ?? 'path',
      credentials: options.credentials,
      concurrency: options.concurrency ?? 8,
      timeoutMs: options.timeoutMs ?? 30_000,
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
    });
  }

  /** The object key of `address`, whether or not it is stored; for tests and operators. */
  keyOf(address: ChunkAddress): string {
    const name = address.toString();
    return `${this.prefix}chunks/${name.slice(-3, -1)}/${name.slice(-5, -3)}/${name}`;
  }

  /** Creates the bucket (tests, and first-time setup); an existing bucket of ours is fine. */
  async createBucket(options: AbortOptions = {}): Promise<void> {
    const res = await this.client.send({ method: 'PUT', maxBodyBytes: 64 * 1024, ...signalOf(options) });
    if (res.status === 200) return;
    if (res.status === 409 && /BucketAlreadyOwnedByYou/.test(Buffer.from(res.body).toString())) return;
    this.client.fail(res, 'create bucket');
  }

  async put(bytes: Uint8Array, options: AbortOptions = {}): Promise<ChunkAddress> {
    throwIfAborted(options.signal);
    if (bytes.length > MAX_CHUNK_BYTES) {
      throw new InvalidInputError(`chunk of ${bytes.length} bytes exceeds ${MAX_CHUNK_BYTES}`);
    }
    const address = addressOf(bytes);
    // The body is a copy taken now: the caller may reuse its buffer as soon
    // as put returns, and a retry must send the same bytes.
    const body = Uint8Array.from(bytes);
    const res = await this.client.send({
      method: 'PUT',
      key: this.keyOf(address),
      body,
      payloadHash: Buffer.from(address.multihash.digest).toString('hex'),
      headers: { 'content-type': 'application/octet-stream' },
      maxBodyBytes: 64 * 1024,
      ...signalOf(options),
    });
    if (res.status !== 200) this.client.fail(res, 'PUT');
    return address;
  }

  async get(address: ChunkAddress, options: AbortOptions = {}): Promise<Uint8Array> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const res = await this.client.send({
      method: 'GET',
      key: this.keyOf(address),
      maxBodyBytes: MAX_CHUNK_BYTES,
      // Nothing we wrote is this big; do not let a planted object make us hold it.
      tooLarge: () => new IntegrityError(address.toString(), 'chunk'),
      ...signalOf(options),
    });
    if (res.status === 404) throw new NotFoundError(`no chunk ${address.toString()}`);
    if (res.status !== 200) this.client.fail(res, 'GET');
    // The body is a fresh array of ours (s3-client.ts): a large one is hashed on a thread.
    return verifyOwnedChunk(address, res.body);
  }

  async has(address: ChunkAddress, options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const res = await this.client.send({ method: 'HEAD', key: this.keyOf(address), maxBodyBytes: 0, ...signalOf(options) });
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    this.client.fail(res, 'HEAD');
  }

  /**
   * HEAD: the object's size and Last-Modified (whole seconds: AWS rounds
   * down, Swift up; either way within a second of the put, which a gc grace
   * period of minutes absorbs).
   * Every put is a whole PUT, so Last-Modified is refreshed by a put of
   * bytes already stored, as the contract asks. There is deliberately no
   * deleteIfIdleSince: without conditional requests (Swift has none) a
   * check-then-delete cannot be atomic against a concurrent put.
   */
  async stat(address: ChunkAddress, options: AbortOptions = {}): Promise<ChunkStat | undefined> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const res = await this.client.send({ method: 'HEAD', key: this.keyOf(address), maxBodyBytes: 0, ...signalOf(options) });
    if (res.status === 404) return undefined;
    if (res.status !== 200) this.client.fail(res, 'HEAD');
    const bytes = Number(res.headers['content-length']);
    const lastPutMs = Date.parse(String(res.headers['last-modified']));
    if (!Number.isSafeInteger(bytes) || Number.isNaN(lastPutMs)) this.client.fail(res, 'HEAD (no size or date)');
    return { bytes, lastPutMs };
  }

  async delete(address: ChunkAddress, options: AbortOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    assertChunkAddress(address);
    const res = await this.client.send({ method: 'DELETE', key: this.keyOf(address), maxBodyBytes: 64 * 1024, ...signalOf(options) });
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) this.client.fail(res, 'DELETE');
  }

  async *list(options: AbortOptions = {}): AsyncIterable<ChunkAddress> {
    for await (const { address } of this.walk(options)) yield address;
  }

  /** Lists every chunk: O(chunks / 1000) requests, for `capstan status` and benchmarks, not hot paths. */
  async usage(options: AbortOptions = {}): Promise<{ chunks: number; bytes: number }> {
    let chunks = 0;
    let bytes = 0;
    for await (const { size } of this.walk(options)) {
      chunks += 1;
      bytes += size;
    }
    return { chunks, bytes };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Every object that is a chunk in its right place; stray keys are skipped, never yielded. */
  private async *walk(options: AbortOptions): AsyncGenerator<{ address: ChunkAddress; size: number }> {
    for await (const { key, size } of listObjects(this.client, `${this.prefix}chunks/`, {
      pageKeys: this.listPageKeys,
      signal: options.signal,
      operation: 'list',
    })) {
      const address = addressFromName(key.slice(key.lastIndexOf('/') + 1));
      if (address !== undefined && this.keyOf(address) === key) yield { address, size };
    }
  }
}

function signalOf(options: AbortOptions): { signal?: AbortSignal } {
  return options.signal ? { signal: options.signal } : {};
}
