import { FileReadCap, FileVerifyCap, LiteralCap } from '../../cap/index.js';
import { InvalidInputError, throwIfAborted, type AbortOptions } from '../../errors.js';
import type { ChunkStore } from '../../store/chunks/chunk-store.js';
import type { FileChunkList, FileWriter, UploadResult } from '../api.js';
import { ADDRESS_BYTES } from './format.js';
import { addressAt, fetchManifest, openAddressSection } from './manifest.js';
import { ChunkedFileWriter, type FileWriterOptions } from './writer.js';

/**
 * Immutable files (CHK, format v1): the tree layer's file half. The format is
 * in format.ts and manifest.ts (authoritative) and docs/spec/files.md.
 */

export { DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_CHUNK_COUNT, maxFileSize } from './format.js';
export { DEFAULT_CONCURRENCY, type FileWriterOptions } from './writer.js';
export { openFile, MAX_READ_BYTES, READ_CACHE_CHUNKS, STREAM_PREFETCH_CHUNKS } from './reader.js';

/** A streaming writer; chunk keys derive from `convergence` (32 bytes, see src/crypto/convergence.ts). */
export function createFileWriter(store: ChunkStore, convergence: Uint8Array, options?: FileWriterOptions): FileWriter {
  return new ChunkedFileWriter(store, convergence, options);
}

/** Stores `bytes` as one immutable file: createFileWriter, one write, finish. */
export async function uploadBytes(
  store: ChunkStore,
  convergence: Uint8Array,
  bytes: Uint8Array,
  options: FileWriterOptions & AbortOptions = {},
): Promise<UploadResult> {
  const writer = createFileWriter(store, convergence, options);
  try {
    await writer.write(bytes, options);
    return await writer.finish(options);
  } catch (err) {
    writer.abort();
    throw err;
  }
}

/**
 * The manifest and chunk addresses of a file, for check and gc. Needs only
 * the verify key (a read cap derives it), and decrypts only the address
 * section: no chunk key, no content. Undefined for a literal cap (nothing
 * stored). The manifest is checked exactly as openFile checks it.
 */
export async function fileChunks(
  store: ChunkStore,
  cap: FileReadCap | FileVerifyCap | LiteralCap,
  options: AbortOptions = {},
): Promise<FileChunkList | undefined> {
  throwIfAborted(options.signal);
  if (cap instanceof LiteralCap) return undefined;
  if (!(cap instanceof FileReadCap) && !(cap instanceof FileVerifyCap)) throw new InvalidInputError('not a file cap');
  const manifest = await fetchManifest(store, cap.manifestHash, cap.size, options);
  const addresses = openAddressSection(manifest, cap.verifyKey);
  const chunks = [];
  for (let i = 0; i < addresses.length / ADDRESS_BYTES; i++) chunks.push(addressAt(addresses, i));
  return { manifest: manifest.address, chunks };
}
