import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing, run, sftpBatch, skipNotice } from '../helpers/openssh.js';
import { startGateway, type Gateway } from './gateway-fixture.js';

/**
 * 1 GiB through OpenSSH's sftp, both ways, over an FsChunkStore with the
 * default chunk size: byte-identical, and the upload streams (no spool), so
 * its CLOSE costs one manifest, not a second pass over a gigabyte.
 */
const SIZE = 1024 * 1024 * 1024;
const skip = skipNotice(missing('sftp', 'head'), '1 GiB sftp test');

let gw: Gateway;
let work: string;

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

beforeAll(async () => {
  if (skip) return;
  gw = await startGateway({ fsChunks: true });
  work = await mkdtemp(join(tmpdir(), 'capstan-big-'));
});
afterAll(async () => {
  await gw?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(skip)('a 1 GiB file', () => {
  it('puts and gets back byte-identical; the CLOSE commits a stream in under a second', async () => {
    const made = await run('sh', ['-c', `head -c ${SIZE} /dev/urandom > big.bin`], { cwd: work, timeoutMs: 120_000 });
    expect(made.code).toBe(0);
    const put = await sftpBatch(gw.alice, work, ['put big.bin', 'get big.bin big.back'], [], 900_000);
    expect(put.code, put.stderr).toBe(0);
    const commit = gw.logs.find((l) => l.event === 'commit' && l.size === SIZE);
    expect(commit).toMatchObject({ mode: 'stream' });
    expect(commit!.ms as number).toBeLessThan(1000);
    expect(await sha256(join(work, 'big.back'))).toBe(await sha256(join(work, 'big.bin')));
  }, 1_200_000);
});
