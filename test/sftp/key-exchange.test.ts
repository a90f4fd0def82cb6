import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientOffer, describeFailure, OfferReader, parseClientOffer } from '../../src/sftp/kex.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';
import { must } from '../helpers/backup-tools.js';
import { peersOrSkip, requirePeers, run, sftpBatch } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * Key exchange (src/sftp/kex.ts). ssh2's server lists group exchange but
 * cannot perform it, and negotiation takes the client's first method the
 * server lists: a client preferring group exchange was cut off even when it
 * also offered curve25519. The gateway now lists only what it can do;
 * diffie-hellman-group14-sha1 only with [sftpd] kex_sha1; and a failed
 * handshake says in the log what the client offered, as OpenSSH's sshd does.
 */

/** A client's identification line and KEXINIT packet, as the wire carries them. */
function clientStart(lists: string[], padding = 6): Buffer {
  const strings = lists.map((l) => {
    const b = Buffer.alloc(4 + Buffer.byteLength(l));
    b.writeUInt32BE(Buffer.byteLength(l));
    b.write(l, 4, 'latin1');
    return b;
  });
  const payload = Buffer.concat([Buffer.from([20]), randomBytes(16), ...strings, Buffer.from([0, 0, 0, 0, 0])]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(1 + payload.length + padding);
  header[4] = padding;
  return Buffer.concat([Buffer.from('SSH-2.0-Test_1.0\r\n'), header, payload, Buffer.alloc(padding)]);
}

const OFFER_LISTS = [
  'curve25519-sha256,diffie-hellman-group14-sha1,ext-info-c',
  'ssh-ed25519,rsa-sha2-256',
  'aes128-ctr,aes128-cbc',
  'aes256-ctr',
  'hmac-sha2-256',
  'hmac-sha1',
  'none,zlib@openssh.com',
  'none',
  '',
  '',
];

describe('parseClientOffer', () => {
  it('reads the client-to-server lists of the first KEXINIT after the identification line', () => {
    expect(parseClientOffer(clientStart(OFFER_LISTS))).toEqual({
      kex: ['curve25519-sha256', 'diffie-hellman-group14-sha1', 'ext-info-c'],
      hostKey: ['ssh-ed25519', 'rsa-sha2-256'],
      cipher: ['aes128-ctr', 'aes128-cbc'],
      mac: ['hmac-sha2-256'],
      compression: ['none', 'zlib@openssh.com'],
    });
  });

  it('is incomplete at every cut short of the whole packet', () => {
    const whole = clientStart(OFFER_LISTS);
    for (let cut = 0; cut < whole.length - 6; cut++) expect(parseClientOffer(whole.subarray(0, cut))).toBeUndefined();
  });

  it('is null for bytes that are not an identification line and a KEXINIT', () => {
    const whole = clientStart(OFFER_LISTS);
    const notKexinit = Buffer.from(whole);
    notKexinit[18 + 5] = 21;
    expect(parseClientOffer(notKexinit)).toBeNull();
    const lyingLength = Buffer.from(whole);
    lyingLength.writeUInt32BE(0xffff_fff0, 18);
    expect(parseClientOffer(lyingLength)).toBeNull();
    const listPastEnd = Buffer.from(whole);
    listPastEnd.writeUInt32BE(100_000, 18 + 5 + 17);
    expect(parseClientOffer(listPastEnd)).toBeNull();
    expect(parseClientOffer(Buffer.alloc(20_000, 0x41))).toBeNull();
  });

  it('OfferReader finds the offer however the bytes are split, then stops listening; junk stops it at 16 KiB', () => {
    const whole = clientStart(OFFER_LISTS);
    const expected = parseClientOffer(whole);
    const readerOf = (chunks: Buffer[]) => {
      const stream = new PassThrough();
      const reader = new OfferReader(stream as unknown as Socket);
      for (const chunk of chunks) stream.emit('data', chunk);
      return { reader, listening: stream.listenerCount('data') };
    };
    for (let cut = 1; cut < whole.length; cut += 7) {
      expect(readerOf([whole.subarray(0, cut), whole.subarray(cut)])).toEqual({ reader: expect.anything(), listening: 0 });
      expect(readerOf([whole.subarray(0, cut), whole.subarray(cut)]).reader.offer).toEqual(expected);
    }
    const bytes = [...whole].map((b) => Buffer.from([b]));
    const oneByOne = readerOf(bytes);
    expect(oneByOne.reader.offer).toEqual(expected);
    expect(oneByOne.listening).toBe(0);
    const partial = readerOf(bytes.slice(0, whole.length - 1));
    expect(partial.reader.offer).toBeUndefined();
    expect(partial.listening).toBe(1);
    const junk = readerOf([Buffer.alloc(10_000, 0x41), Buffer.alloc(10_000, 0x41)]);
    expect(junk).toEqual({ reader: expect.anything(), listening: 0 });
    expect(junk.reader.offer).toBeUndefined();
  });

  it('describeFailure names the list the handshake failed on, and kex_sha1 only when it would help', () => {
    const offer = parseClientOffer(clientStart(OFFER_LISTS)) ?? undefined;
    expect(describeFailure('no matching key exchange algorithm', offer, false)).toEqual({
      offered: 'curve25519-sha256,diffie-hellman-group14-sha1,ext-info-c',
      hint: '[sftpd] kex_sha1 = true would allow diffie-hellman-group14-sha1',
    });
    expect(describeFailure('no matching key exchange algorithm', offer, true)).toEqual({
      offered: 'curve25519-sha256,diffie-hellman-group14-sha1,ext-info-c',
    });
    expect(describeFailure('no matching C->S cipher', offer, false)).toEqual({ offered: 'aes128-ctr,aes128-cbc' });
    expect(describeFailure('no matching host key format', offer, false)).toEqual({ offered: 'ssh-ed25519,rsa-sha2-256' });
    expect(describeFailure('no matching C->S MAC', offer, false)).toEqual({ offered: 'hmac-sha2-256' });
    expect(describeFailure('Received malformed KEX*_INIT', offer, false)).toEqual({});
    const long = parseClientOffer(clientStart([`${'x'.repeat(3000)},curve25519-sha256`, ...OFFER_LISTS.slice(1)])) ?? undefined;
    expect(describeFailure('no matching key exchange algorithm', long, false)).toEqual({ offered: `${'x'.repeat(1024)}…` });
    expect(describeFailure('no matching key exchange algorithm', undefined, false)).toEqual({});
  });
});

/** What a server lists in its KEXINIT, read off a raw connection (the same layout as a client's start). */
function serverLists(port: number): Promise<ClientOffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('SSH-2.0-Probe_1.0\r\n'));
    let bytes = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      const offer = parseClientOffer(bytes);
      if (offer === undefined) return;
      socket.destroy();
      if (offer === null) reject(new Error('not a KEXINIT'));
      else resolve(offer);
    });
  });
}

const SUITE = 'key exchange with OpenSSH';
const skip = peersOrSkip(SUITE, 'sftp', 'ssh-keygen');

describe.skipIf(skip)(SUITE, () => {
  let strict: Gateway;
  let sha1: Gateway;
  let work: string;
  const data = randomBytes(300_000);

  beforeAll(async () => {
    requirePeers('sftp', 'ssh-keygen');
    strict = await startGateway();
    sha1 = await startGateway({ server: { kexSha1: true } });
    work = await mkdtemp(join(tmpdir(), 'capstan-kex-'));
    await writeFile(join(work, 'up.bin'), data);
  });
  afterAll(async () => {
    await strict?.close();
    await sha1?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  /** put, then get back, with these ssh options; the kex the gateway logged for it. */
  async function roundTrip(gw: Gateway, options: string[], name: string): Promise<unknown> {
    const before = gw.logs.length;
    const args = options.flatMap((o) => ['-o', o]);
    must(await sftpBatch(gw.alice, work, [`put up.bin ${name}`, `get ${name} ${name}.back`], args), `sftp ${options.join(' ')}`);
    expect((await readFile(join(work, `${name}.back`))).equals(data)).toBe(true);
    return gw.logs.slice(before).find((l) => l['event'] === 'handshake')?.['kex'];
  }

  async function refused(gw: Gateway, options: string[]): Promise<Record<string, unknown> | undefined> {
    const before = gw.logs.length;
    const r = await sftpBatch(
      gw.alice,
      work,
      ['pwd'],
      options.flatMap((o) => ['-o', o]),
    );
    expect(r.code).not.toBe(0);
    return gw.logs.slice(before).find((l) => l['event'] === 'handshake_failed');
  }

  it('a client that prefers group exchange, which the gateway cannot do, gets the next method both know', async () => {
    const kex = await roundTrip(strict, ['KexAlgorithms=diffie-hellman-group-exchange-sha256,curve25519-sha256'], 'gex-first');
    expect(kex).toBe('curve25519-sha256');
  });

  it('a client with nothing in common is refused during the key exchange, and the log names its offer', async () => {
    const gex = await refused(strict, ['KexAlgorithms=diffie-hellman-group-exchange-sha256']);
    expect(gex).toMatchObject({ reason: 'no matching key exchange algorithm', remoteAddress: '127.0.0.1' });
    expect(String(gex?.['offered']).split(',')).toContain('diffie-hellman-group-exchange-sha256');
    expect(gex).not.toHaveProperty('hint');

    const group14 = await refused(strict, ['KexAlgorithms=diffie-hellman-group14-sha1']);
    expect(group14).toMatchObject({ hint: '[sftpd] kex_sha1 = true would allow diffie-hellman-group14-sha1' });

    const cbc = await refused(strict, ['Ciphers=aes128-cbc']);
    expect(cbc).toMatchObject({ reason: 'no matching C->S cipher', offered: 'aes128-cbc' });
  });

  it('every method the gateway lists works with OpenSSH: each key exchange, host key, cipher and MAC alone', async () => {
    const gw = await startGateway({
      server: { kexSha1: true, hostKeys: [generateSshKeyPair('ed25519').private, generateSshKeyPair('rsa').private] },
    });
    try {
      const listed = await serverLists(gw.port);
      const known = async (query: string) => (await run('ssh', ['-Q', query])).stdout.split('\n');
      const kinds: [keyof ClientOffer, string, (name: string) => string[]][] = [
        ['kex', 'kex', (n) => [`KexAlgorithms=${n}`]],
        ['hostKey', 'HostKeyAlgorithms', (n) => [`HostKeyAlgorithms=${n}`]],
        ['cipher', 'cipher', (n) => [`Ciphers=${n}`]],
        // With a cipher that has no MAC of its own.
        ['mac', 'mac', (n) => ['Ciphers=aes128-ctr', `MACs=${n}`]],
      ];
      const unchecked: string[] = [];
      for (const [kind, query, options] of kinds) {
        const openssh = await known(query);
        for (const name of listed[kind]) {
          if (name === 'ext-info-s' || name.startsWith('kex-strict-')) continue;
          if (!openssh.includes(name)) {
            unchecked.push(name);
            continue;
          }
          const before = gw.logs.length;
          const args = options(name).flatMap((o) => ['-o', o]);
          must(await sftpBatch(gw.alice, work, ['pwd'], args), `sftp -o ${options(name).join(' -o ')}`);
          const agreed = gw.logs.slice(before).find((l) => l['event'] === 'handshake');
          expect(agreed?.[kind]).toBe(name);
        }
      }
      // ssh2 lists two Diffie-Hellman groups OpenSSH never implemented.
      expect(unchecked).toEqual(['diffie-hellman-group15-sha512', 'diffie-hellman-group17-sha512']);
      expect(listed.kex).toContain('diffie-hellman-group14-sha1');
    } finally {
      await gw.close();
    }
  });

  it('with [sftpd] kex_sha1, a client offering only diffie-hellman-group14-sha1 gets in; one offering curve25519 still gets that', async () => {
    expect(await roundTrip(sha1, ['KexAlgorithms=diffie-hellman-group14-sha1'], 'sha1')).toBe('diffie-hellman-group14-sha1');
    expect(await roundTrip(sha1, ['KexAlgorithms=curve25519-sha256,diffie-hellman-group14-sha1'], 'modern')).toBe('curve25519-sha256');
  });
});
