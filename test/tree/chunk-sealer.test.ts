import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkSealer } from '../../src/tree/file/chunk-sealer.js';

describe('ChunkSealer', () => {
  const convergence = randomBytes(32);

  it("seals a file's only chunk to the same bytes, key and digests whether or not it is told so", () => {
    const plaintext = randomBytes(16 * 1024);
    const streamed = new ChunkSealer(convergence);
    const told = new ChunkSealer(convergence);
    const a = streamed.seal(plaintext);
    const b = told.seal(plaintext, undefined, true);
    expect(Buffer.from(b.sealed).equals(Buffer.from(a.sealed))).toBe(true);
    expect(b.key).toEqual(a.key);
    expect(told.finish()).toEqual(streamed.finish());
  });

  it('refuses a chunk before or after the only one', () => {
    const after = new ChunkSealer(convergence);
    after.seal(randomBytes(100), undefined, true);
    expect(() => after.seal(randomBytes(100))).toThrow(/one chunk/);
    const before = new ChunkSealer(convergence);
    before.seal(randomBytes(100));
    expect(() => before.seal(randomBytes(100), undefined, true)).toThrow(/one chunk/);
  });
});
