import type { ChunkAddress } from '../chunks/chunk-store.js';
import type { EncodedRecord, Location } from './format.js';

/** Where an appended record went. `seq` orders every record a sink ever appends. */
export interface Appended {
  seq: number;
  pack: string;
  /** Offset of the record's payload (an object's bytes) in the pack. */
  payload: number;
}

/**
 * Where a pack store's records go: the fs journal (journal.ts) or packs
 * written whole to S3 or a shared directory (object-sink.ts). The pack store
 * above it is the same for all.
 *
 * Contract:
 * - append MUST be synchronous and keep order: records are laid down in the
 *   order appended, and a record is readable (read) from the moment it is
 *   appended;
 * - written(seq) resolves once the record is out of the caller's buffer
 *   (written to a file, or copied into a pack being built), so the caller
 *   may reuse its buffer;
 * - sync() resolves with a seq once every record appended before the call
 *   (at least up to that seq) is durable, in order: a record is never durable
 *   while an earlier one is not;
 * - read answers bytes nothing else holds (the pack store may transfer
 *   them to a thread for their address check, src/crypto/offload.ts); read
 *   or readInto of a location that does not exist (a pack gc removed) is
 *   NotFoundError; the pack store then asks the index again;
 * - sealedPacks never lists the pack being appended to.
 */
export interface PackSink {
  append(record: EncodedRecord, address?: ChunkAddress): Appended;
  written(seq: number): Promise<void>;
  sync(): Promise<number>;
  /** The highest seq known durable. */
  readonly syncedSeq: number;
  read(location: Location): Promise<Uint8Array>;
  /**
   * Optional: read, into the start of `target` (at least location.length
   * long) instead of a new buffer; answers the bytes read (fewer at a torn
   * end), and their SHA-256 when the sink computed it on the way (the local
   * sink reads and hashes on an offload thread, in one hop; undefined: the
   * caller hashes them). Not touching `target` once settled.
   */
  readInto?(location: Location, target: Uint8Array): Promise<{ read: number; sha256: Uint8Array | undefined }>;
  /** Every pack no longer appended to, with its size in bytes: what compaction may rewrite. */
  sealedPacks(): Promise<{ pack: string; bytes: number }[]>;
  /** Deletes a sealed pack (compaction moved what was live in it); reads of it are NotFoundError from then on. */
  removePack(pack: string): Promise<void>;
  close(): Promise<void>;
}
