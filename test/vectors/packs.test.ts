import { promises as fsp, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addressOf } from '../../src/store/address.js';
import {
  decodeFooter,
  decodeHeader,
  decodeTrailerRecord,
  encodeHeader,
  FOOTER_BYTES,
  HEADER_BYTES,
  objectRecord,
  type ScannedRecord,
  scanRecord,
  slotRecord,
  type TrailerEntry,
  trailerAndFooter,
} from '../../src/store/packs/format.js';
import { packFile } from '../../src/store/packs/pack-files.js';
import { LocalEngine } from '../../src/store/packs/local-engine.js';

/**
 * Frozen vectors for pack files, format version 3 (docs/spec/packs.md): a
 * sealed pack holding two objects and a slot record, byte for byte, and what
 * a scan of it yields. packs.json was generated once (CAPSTAN_WRITE_VECTORS=1)
 * and is never regenerated: if this test fails, the change broke the format
 * of every embedded node's store, not the vectors.
 */

interface PackVectors {
  description: string;
  packId: string;
  objects: { address: string; bytesHex: string; offset: number; length: number }[];
  slot: { storageIndexHex: string; seq: string; recordHex: string };
  trailerOffset: number;
  packHex: string;
}

const VECTOR_FILE = new URL('./packs.json', import.meta.url);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

/** The pack the vectors freeze, built by the writer's own encoders. */
function build(): PackVectors {
  const packId = '0123456789abcdef';
  const contents = [Uint8Array.from({ length: 40 }, (_, i) => (i * 7) & 0xff), new TextEncoder().encode('capstan pack v3')];
  const slot = { storageIndex: Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i), seq: 5n, record: Uint8Array.of(1, 2, 3, 4) };
  const parts: Uint8Array[] = [encodeHeader(Buffer.from(packId, 'hex'))];
  let at = HEADER_BYTES;
  const entries: TrailerEntry[] = [];
  const objects: PackVectors['objects'] = [];
  for (const content of contents) {
    const address = addressOf(content);
    const record = objectRecord(address, content);
    entries.push({ address, offset: at + record.payloadOffset, length: content.length });
    objects.push({ address: address.toString(), bytesHex: hex(content), offset: at + record.payloadOffset, length: content.length });
    parts.push(...record.parts);
    at += record.bytes;
  }
  const s = slotRecord(slot.storageIndex, slot.seq, slot.record);
  parts.push(...s.parts);
  at += s.bytes;
  const trailerOffset = at;
  parts.push(...trailerAndFooter(entries, at));
  return {
    description:
      'Frozen pack vectors, format version 3 (docs/spec/packs.md): a sealed pack with two objects, one slot record, ' +
      'its trailer and footer. Produced by packs.test.ts; do not edit by hand.',
    packId,
    objects,
    slot: { storageIndexHex: hex(slot.storageIndex), seq: slot.seq.toString(), recordHex: hex(slot.record) },
    trailerOffset,
    packHex: hex(Buffer.concat(parts)),
  };
}

const writing = process.env.CAPSTAN_WRITE_VECTORS === '1';

describe('pack vectors (format version 3)', () => {
  if (writing) {
    it('writes packs.json', () => {
      writeFileSync(VECTOR_FILE, `${JSON.stringify(build(), null, 2)}\n`);
    });
  }

  describe.skipIf(writing)('frozen', () => {
    const frozen = (): PackVectors => JSON.parse(readFileSync(VECTOR_FILE, 'utf8')) as PackVectors;

    it('the writer encodes exactly the frozen bytes', () => {
      expect(build()).toEqual(frozen());
    });

    it('a scan of the frozen bytes finds the header, each record, the trailer and the footer', () => {
      const v = frozen();
      const pack = bytes(v.packHex);
      // The spec's bytes, spelled out: "CSPK", version 3, three zero bytes, the pack id; the footer is the
      // trailer's offset as a u64 and "CSPT".
      expect(v.packHex.slice(0, 32)).toBe(`4353504b03000000${v.packId}`);
      expect(v.packHex.slice(-24)).toBe(`${v.trailerOffset.toString(16).padStart(16, '0')}43535054`);
      expect(decodeHeader(pack.subarray(0, HEADER_BYTES))).toBe(v.packId);
      const scanned: ScannedRecord[] = [];
      for (let at = HEADER_BYTES; at < pack.length - FOOTER_BYTES; ) {
        const record = scanRecord(pack, at);
        if (record === undefined) throw new Error(`no whole record at ${at}`);
        scanned.push(record);
        at = record.end;
      }
      expect(scanned.map((r) => r.type)).toEqual(['object', 'object', 'slot', 'trailer']);
      for (const [i, o] of v.objects.entries()) {
        const r = scanned[i] as Extract<ScannedRecord, { type: 'object' }>;
        expect({ address: r.address.toString(), offset: r.offset, length: r.length }).toEqual({
          address: o.address,
          offset: o.offset,
          length: o.length,
        });
        expect(hex(pack.subarray(o.offset, o.offset + o.length))).toBe(o.bytesHex);
      }
      const slot = scanned[2] as Extract<ScannedRecord, { type: 'slot' }>;
      expect({ si: hex(slot.storageIndex), seq: slot.seq.toString(), record: hex(slot.record) }).toEqual({
        si: v.slot.storageIndexHex,
        seq: v.slot.seq,
        record: v.slot.recordHex,
      });
      expect(decodeFooter(pack.subarray(pack.length - FOOTER_BYTES), pack.length)).toBe(v.trailerOffset);
      const trailer = decodeTrailerRecord(pack.subarray(v.trailerOffset, pack.length - FOOTER_BYTES));
      expect(trailer.map((e) => ({ address: e.address.toString(), offset: e.offset, length: e.length }))).toEqual(
        v.objects.map(({ address, offset, length }) => ({ address, offset, length })),
      );
    });

    it('a node whose packs directory holds only the frozen pack opens with both objects and the slot', async () => {
      const v = frozen();
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'capstan-pack-vectors-'));
      try {
        await fsp.mkdir(path.join(dir, 'packs'));
        await fsp.writeFile(packFile(path.join(dir, 'packs'), v.packId), bytes(v.packHex));
        const engine = await LocalEngine.open({ slotsDir: path.join(dir, 'slots'), packsDir: path.join(dir, 'packs'), fsync: false });
        try {
          for (const o of v.objects) {
            expect(hex(await engine.chunks.get(addressOf(bytes(o.bytesHex))))).toBe(o.bytesHex);
          }
          expect(await engine.slots.get(bytes(v.slot.storageIndexHex))).toEqual({
            seq: BigInt(v.slot.seq),
            record: bytes(v.slot.recordHex),
          });
        } finally {
          await engine.close();
        }
        // A sealed pack is never cut or rewritten by recovery.
        expect(hex(await fsp.readFile(packFile(path.join(dir, 'packs'), v.packId)))).toBe(v.packHex);
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
    });
  });
});
