import { describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';

const { utils } = ssh2;

describe('generateSshKeyPair', () => {
  // ssh2's own generator emits an unreadable Ed25519 key about once in 256
  // (a public key with a leading zero byte written 31 bytes long); 1,000 keys
  // hit that case with probability > 98 %, so this test does exercise the retry.
  it('only returns Ed25519 pairs that ssh2 can parse back, with 32-byte public keys', () => {
    for (let i = 0; i < 1000; i++) {
      const pair = generateSshKeyPair('ed25519');
      const pub = utils.parseKey(pair.public);
      const priv = utils.parseKey(pair.private);
      expect(pub).not.toBeInstanceOf(Error);
      expect(priv).not.toBeInstanceOf(Error);
      const blob = (pub as ssh2.ParsedKey).getPublicSSH();
      // string "ssh-ed25519" (4 + 11) then string key (4 + 32)
      expect(blob.length).toBe(4 + 11 + 4 + 32);
    }
  });

  it('makes RSA and ECDSA keys of the asked size', () => {
    expect((utils.parseKey(generateSshKeyPair('rsa', { bits: 2048 }).public) as ssh2.ParsedKey).type).toBe('ssh-rsa');
    expect((utils.parseKey(generateSshKeyPair('ecdsa', { bits: 256 }).public) as ssh2.ParsedKey).type).toBe('ecdsa-sha2-nistp256');
  });
});
