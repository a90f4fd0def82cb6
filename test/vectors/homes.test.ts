import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deriveHomeKeys, homeStorageIndex, openHomeRecord, sealHomeRecord } from '../../src/homes/index.js';

/**
 * Frozen home vectors (docs/spec/homes.md). A failure means the home format
 * changed: every home of every running system would vanish, so that needs a
 * new record version that still reads these, not a new vector file.
 */
interface Vectors {
  secretHex: string;
  indexKeyHex: string;
  sealKeyHex: string;
  prefixHex: string;
  homes: {
    name: string;
    seq: number;
    state: 'live' | 'revoked';
    cap?: string;
    sinceMs: number;
    nonceHex: string;
    storageIndexHex: string;
    recordHex: string;
  }[];
}

const vectors = JSON.parse(readFileSync(new URL('./homes.json', import.meta.url), 'utf8')) as Vectors;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('home vectors', () => {
  const keys = deriveHomeKeys(Buffer.from(vectors.secretHex, 'hex'));

  it('derives the keys and prefix', () => {
    expect([hex(keys.index), hex(keys.seal), hex(keys.prefix)]).toEqual([vectors.indexKeyHex, vectors.sealKeyHex, vectors.prefixHex]);
  });

  it.each(vectors.homes.map((h) => [`${h.name} seq ${h.seq}`, h] as const))('%s', (_label, h) => {
    const si = homeStorageIndex(keys, h.name);
    expect(hex(si)).toBe(h.storageIndexHex);
    const state =
      h.state === 'live'
        ? { kind: 'live' as const, cap: h.cap!, since: new Date(h.sinceMs) }
        : { kind: 'revoked' as const, since: new Date(h.sinceMs) };
    expect(hex(sealHomeRecord(keys, si, BigInt(h.seq), { name: h.name, state }, Buffer.from(h.nonceHex, 'hex')))).toBe(h.recordHex);
    expect(openHomeRecord(keys, si, BigInt(h.seq), Buffer.from(h.recordHex, 'hex'))).toEqual({ name: h.name, state });
  });
});
