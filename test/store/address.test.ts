import { CID } from 'multiformats/cid';
import { base58btc } from 'multiformats/bases/base58';
import * as json from 'multiformats/codecs/json';
import { sha256 } from 'multiformats/hashes/sha2';
import { describe, expect, it } from 'vitest';
import { addressKey, addressOf, isChunkAddress, parseAddress, verifyChunk } from '../../src/store/address.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('chunk addresses', () => {
  it('match the well-known raw sha2-256 CIDs', () => {
    // The same strings `ipfs add --raw-leaves --cid-version 1` and every CID library print.
    expect(addressOf(new Uint8Array(0)).toString()).toBe('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
    expect(addressOf(utf8('hello world')).toString()).toBe('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e');
  });

  it('agree with the multiformats JS sha256', async () => {
    const data = utf8('capstan');
    expect(addressOf(data).multihash.bytes).toEqual((await sha256.digest(data)).bytes);
  });

  it('have a key that is their string form', () => {
    for (let length = 0; length < 300; length += 7) {
      const address = addressOf(new Uint8Array(length).fill(length));
      expect(addressKey(address)).toBe(address.toString());
    }
  });

  it('parse back from base32 and base58btc', () => {
    const address = addressOf(utf8('x'));
    expect(parseAddress(address.toString()).equals(address)).toBe(true);
    const parsed = parseAddress(address.toString(base58btc));
    expect(parsed.equals(address)).toBe(true);
    expect(parsed.toString()).toBe(address.toString());
  });

  it('reject junk and CIDs of another kind with InvalidInputError', async () => {
    const other = CID.create(1, json.code, await sha256.digest(utf8('x')));
    const v0 = CID.createV0(await sha256.digest(utf8('x')));
    const address = addressOf(utf8('x')).toString();
    for (const junk of ['', 'hello', 'b' + 'a'.repeat(200), other.toString(), v0.toString(), address.slice(0, -1), `${address} `]) {
      expect(() => parseAddress(junk), junk).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
    }
    expect(isChunkAddress(other)).toBe(false);
    expect(isChunkAddress('bafkrei')).toBe(false);
  });

  it('verifyChunk accepts the bytes and throws IntegrityError naming the address otherwise', async () => {
    const data = utf8('some ciphertext');
    const address = addressOf(data);
    expect(() => verifyChunk(address, data)).not.toThrow();
    const flipped = data.slice();
    flipped[0]! ^= 1;
    expect(() => verifyChunk(address, flipped)).toThrow(
      expect.objectContaining({ name: 'IntegrityError', storageIndex: address.toString() }),
    );
    expect(() => verifyChunk(address, data.subarray(1))).toThrow(expect.objectContaining({ name: 'IntegrityError' }));
    const other = CID.create(1, json.code, await sha256.digest(data));
    expect(() => verifyChunk(other as never, data)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }));
  });
});
