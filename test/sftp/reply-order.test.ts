import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/callback.js';
import { missing, remote, scp, skipNotice } from '../helpers/openssh.js';
import { connectSsh2, startGateway, type Gateway } from './gateway-fixture.js';
import { RawSftp, readString, str, u32, u64 } from './raw-sftp.js';

/**
 * Replies leave in request order (src/sftp/protocol/transport.ts). OpenSSH
 * 9.0–9.3's scp writes READ replies as if they came in the order asked and
 * silently truncates the download when they do not: Debian 12 ships 9.2p1.
 * Downloads run against a gateway on an fs chunk store with 1 MiB chunks,
 * where concurrent READs really do finish out of order (a READ whose chunk is
 * cached answers before one that waits for the disk).
 */

const noScp = skipNotice(missing('scp', 'ssh-keygen'), 'scp download tests');
const MB = 1_000_000;
/** Each downloaded this many times (the quick-start test in test/cli/quick-start.test.ts adds 200 MB). */
const SIZES = [1 * MB, 50 * MB];
const ROUNDS = 3;

let gw: Gateway;
let work: string;

async function randomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 4 * 1024 * 1024);
    const block = randomBytes(n);
    hash.update(block);
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
    left -= n;
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

beforeAll(async () => {
  gw = await startGateway({ fsChunks: true });
  work = await mkdtemp(join(tmpdir(), 'capstan-order-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('replies in request order', () => {
  it('64 pipelined READs on one handle are answered in the order sent, each with its own bytes', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 12345);
    const client = await connectSsh2(gw.port, 'alice', { privateKey: await readFile(gw.keyFile) });
    try {
      const sftp = await new Promise<import('ssh2').SFTPWrapper>((resolve, reject) => client.sftp((e, s) => (e ? reject(e) : resolve(s))));
      await call((cb) => sftp.writeFile('/pipelined.bin', content, cb));
      const raw = await RawSftp.open(client);
      await raw.init();
      raw.send(3, u32(1), str('/pipelined.bin'), u32(1), u32(0));
      const opened = (await raw.next())!;
      expect(opened.type).toBe(102);
      const [handle] = readString(opened.payload, 4);
      // Offsets in a scrambled order over several chunks, so some READs hit cached chunks and
      // others wait for the store: the work finishes out of order, the replies must not.
      const LEN = 32 * 1024;
      const offsets = Array.from({ length: 64 }, (_, i) => ((i * 37) % 64) * (content.length / 64));
      for (const [i, offset] of offsets.entries()) raw.send(5, u32(100 + i), str(handle), u64(Math.floor(offset)), u32(LEN));
      for (let i = 0; i < offsets.length; i++) {
        const reply = (await raw.next())!;
        expect(reply.type).toBe(103);
        expect(reply.payload.readUInt32BE(0)).toBe(100 + i);
        const [data] = readString(reply.payload, 4);
        const at = Math.floor(offsets[i]!);
        expect(data.equals(content.subarray(at, at + LEN))).toBe(true);
      }
    } finally {
      client.end();
    }
  });
});

describe.skipIf(noScp)('scp downloads (OpenSSH scp in SFTP mode)', () => {
  it(`${SIZES.map((s) => `${s / MB} MB`).join(', ')}: each downloaded ${ROUNDS} times, complete and byte-identical`, async () => {
    for (const size of SIZES) {
      const name = `f-${size}.bin`;
      const source = join(work, name);
      const digest = await randomFile(source, size);
      const up = await scp(gw.alice, [source, remote(gw.alice, `/${name}`)], 300_000);
      expect(up.code, up.stderr).toBe(0);
      for (let round = 0; round < ROUNDS; round++) {
        const back = join(work, `back-${round}-${name}`);
        const down = await scp(gw.alice, [remote(gw.alice, `/${name}`), back], 300_000);
        expect(down.code, down.stderr).toBe(0);
        expect((await stat(back)).size).toBe(size);
        expect(await sha256Of(back)).toBe(digest);
        await rm(back);
      }
      await rm(source);
    }
  }, 600_000);
});
