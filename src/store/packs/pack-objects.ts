/**
 * Where an ObjectPackSink (object-sink.ts) keeps whole packs: an S3 bucket
 * (s3-pack-objects.ts) or a directory several gateways share
 * (fs-pack-objects.ts). A pack's name is its id, 16 hex digits.
 *
 * Contract:
 * - put MUST be durable when it resolves, and a reader MUST never see a
 *   partial pack under its name (an S3 PUT; a file written, synced and
 *   renamed into place);
 * - read returns up to `length` bytes at `offset`, fewer if the pack is
 *   shorter (the pack store then reports an IntegrityError for the object),
 *   and NotFoundError if there is no such pack;
 * - list gives every pack with its size and when it was written;
 * - remove of a pack that is not there is not an error.
 */
export interface PackObjects {
  put(pack: string, bytes: Uint8Array): Promise<void>;
  read(pack: string, offset: number, length: number): Promise<Uint8Array>;
  list(): Promise<{ pack: string; bytes: number; modifiedMs: number }[]>;
  remove(pack: string): Promise<void>;
}

/** A pack object's name: `<16 hex>.pack`. */
export const PACK_OBJECT_NAME = /^([0-9a-f]{16})\.pack$/;
