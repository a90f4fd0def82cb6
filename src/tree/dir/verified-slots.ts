import type { SlotEntry } from '../../store/slots/slot-store.js';
import type { SlotVersion } from './slot-record.js';

/** Default bound of a Tree's verified-record cache, in directories. */
export const DEFAULT_VERIFIED_SLOTS = 4096;

/**
 * The last slot record checked (or signed) per directory, so that reading an
 * unchanged slot again costs a byte comparison instead of an Ed25519
 * verification: every directory operation starts by reading its slot, and
 * the verification was the largest single CPU cost of a small upload.
 *
 * Keyed by storage index, which is the hash of the directory's public key:
 * bytes that verified once under that key verify again, so a hit is exactly
 * as strong as a fresh check. A record the store changes in any byte, or a
 * seq that disagrees, misses and is verified in full. Least recently used
 * out first, at most `limit` directories.
 */
export class VerifiedSlots {
  private readonly map = new Map<string, { record: Uint8Array; version: SlotVersion }>();

  constructor(readonly limit = DEFAULT_VERIFIED_SLOTS) {}

  get(siHex: string, entry: SlotEntry): SlotVersion | undefined {
    const hit = this.map.get(siHex);
    if (!hit || hit.version.seq !== entry.seq || !sameBytes(hit.record, entry.record)) return undefined;
    this.map.delete(siHex);
    this.map.set(siHex, hit);
    return hit.version;
  }

  /** Records a record that verified, or that this process signed itself. */
  set(siHex: string, record: Uint8Array, version: SlotVersion): void {
    this.map.delete(siHex);
    this.map.set(siHex, { record: new Uint8Array(record), version });
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value!);
  }

  clear(): void {
    this.map.clear();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
