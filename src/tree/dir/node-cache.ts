import type { DirNode } from './node-format.js';

/** Default bound of a Tree's decoded-node cache. */
export const DEFAULT_NODE_CACHE_BYTES = 16 * 1024 * 1024;

/**
 * Resident bytes a decoded entry or child costs beyond its share of the
 * plaintext: its objects, strings, the Uint8Arrays and their backing stores.
 * Measured by decoding 100,000 entries and 100,000 children and reading
 * process.memoryUsage() after a full GC: 887 resident bytes per entry of
 * 157 plaintext bytes, 902 per child of 38. (With the previous allowance,
 * 96, a full cache of "16 MiB" of such buckets held some 55 MiB.)
 */
const RESIDENT_BYTES_PER_ITEM = 860;

/** What a decoded node keeps resident: its plaintext, a fixed part, and RESIDENT_BYTES_PER_ITEM per entry or child. */
export function nodeWeight(node: DirNode, plaintextBytes: number): number {
  const items = node.kind === 'bucket' ? node.entries.length : node.children.length;
  return plaintextBytes + 160 + RESIDENT_BYTES_PER_ITEM * items;
}

/**
 * Decoded directory nodes, least recently used out first, bounded by an
 * estimate of their heap footprint in bytes.
 *
 * A node never changes once written (its address is the hash of its blob),
 * so entries never go stale and need no invalidation: a new directory
 * version has new addresses for what changed and shares the rest. An update
 * through this process drops the nodes its new version replaced (Draft's
 * `superseded`) as soon as the swap succeeded: left in, they would push out
 * nodes of current versions first.
 *
 * The key is storage index + address, not the address alone: the cache is
 * shared by every directory a Tree serves, and a writer of directory A could
 * point A's slot at an address belonging to directory B. Keyed by address
 * alone, the gateway would then serve B's cached plaintext under A's keys
 * without ever decrypting it; keyed by SI, it decrypts under A's keys, fails,
 * and reports IntegrityError.
 */
export class NodeCache {
  private readonly map = new Map<string, { node: DirNode; weight: number }>();
  private bytes = 0;

  constructor(readonly maxBytes = DEFAULT_NODE_CACHE_BYTES) {}

  get(siHex: string, address: string): DirNode | undefined {
    const key = `${siHex}/${address}`;
    const hit = this.map.get(key);
    if (!hit) return undefined;
    // Re-insert: Map iteration order is insertion order, so the oldest key is first.
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.node;
  }

  set(siHex: string, address: string, node: DirNode, plaintextBytes: number): void {
    const key = `${siHex}/${address}`;
    const weight = nodeWeight(node, plaintextBytes);
    if (weight > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.weight;
      this.map.delete(key);
    }
    this.map.set(key, { node, weight });
    this.bytes += weight;
    for (const [oldest, value] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(oldest);
      this.bytes -= value.weight;
    }
  }

  /** Drops one node, if held. */
  delete(siHex: string, address: string): void {
    const key = `${siHex}/${address}`;
    const hit = this.map.get(key);
    if (!hit) return;
    this.map.delete(key);
    this.bytes -= hit.weight;
  }

  get size(): { nodes: number; bytes: number } {
    return { nodes: this.map.size, bytes: this.bytes };
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}
