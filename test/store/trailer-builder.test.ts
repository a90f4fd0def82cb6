import { describe, expect, it } from 'vitest';
import { addressOf } from '../../src/store/address.js';
import { decodeFooter, decodeTrailerRecord, FOOTER_BYTES, TrailerBuilder } from '../../src/store/packs/format.js';

/** The trailer kept encoded while a pack is written (journal and object sink): it must decode to what was added. */
describe('TrailerBuilder', () => {
  it('grows past its first capacity and decodes to the entries added, offsets past 2^32 included', () => {
    const trailer = new TrailerBuilder(1);
    const added = Array.from({ length: 1000 }, (_, i) => ({
      address: addressOf(Uint8Array.of(i & 0xff, i >> 8)),
      offset: i === 999 ? 2 ** 40 + 123 : 16 + i * 97,
      length: i === 998 ? 0xffff_ffff : i,
    }));
    for (const e of added) trailer.add(e.address, e.offset, e.length);
    expect(trailer.count).toBe(1000);
    const at = 5_000_000_000;
    const parts = trailer.finish(at);
    const footer = parts.at(-1)!;
    expect(footer.length).toBe(FOOTER_BYTES);
    const record = Buffer.concat(parts.slice(0, -1));
    expect(decodeFooter(footer, at + record.length + FOOTER_BYTES)).toBe(at);
    const decoded = decodeTrailerRecord(record);
    expect(decoded.map((e) => ({ address: e.address.toString(), offset: e.offset, length: e.length }))).toEqual(
      added.map((e) => ({ address: e.address.toString(), offset: e.offset, length: e.length })),
    );
  });

  it('an empty trailer is a valid record', () => {
    const parts = new TrailerBuilder().finish(16);
    expect(decodeTrailerRecord(Buffer.concat(parts.slice(0, -1)))).toEqual([]);
  });
});
