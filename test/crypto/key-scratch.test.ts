import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { withKey } from '../../src/crypto/key-scratch.js';

describe('withKey', () => {
  it('hands over a copy of the key that is zeroed once the call returns, or throws', () => {
    const key = new Uint8Array(randomBytes(32));
    let seen: Uint8Array | undefined;
    const mac = withKey(key, (k) => {
      seen = k;
      expect(k).not.toBe(key);
      expect(Buffer.from(k).equals(key)).toBe(true);
      return createHmac('sha256', k).update('x').digest('hex');
    });
    expect(mac).toBe(createHmac('sha256', key).update('x').digest('hex'));
    expect(seen?.every((b) => b === 0)).toBe(true);
    expect(() =>
      withKey(key, (k) => {
        seen = k;
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(seen?.every((b) => b === 0)).toBe(true);
  });

  it('copies keys of any length up to 64 bytes exactly, and passes longer ones as they are', () => {
    for (const length of [0, 1, 16, 31, 33, 64]) {
      const key = new Uint8Array(randomBytes(length));
      withKey(key, (k) => expect(Buffer.from(k).equals(key)).toBe(true));
    }
    const long = new Uint8Array(65);
    withKey(long, (k) => expect(k).toBe(long));
  });
});
