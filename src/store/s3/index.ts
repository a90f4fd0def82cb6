export { S3ChunkStore, type S3ChunkStoreOptions } from './s3-chunk-store.js';
export { S3Client, S3ResponseError, type S3Addressing, type S3ClientOptions } from './s3-client.js';
export { openS3Credentials, parseS3Credentials, type S3CredentialOrigin, type S3CredentialSource } from './credentials.js';
export { signRequest, uriEncode, UNSIGNED_PAYLOAD, type S3Credentials } from './sigv4.js';
export { withRetry, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
export { Semaphore } from './semaphore.js';
