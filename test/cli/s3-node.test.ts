import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAt, makeTempDir, runCli, runCliBinary, startCli, stopAllCli } from '../helpers/cli.js';
import { setConfig } from '../helpers/cluster.js';
import { createBucket, startSwiftServer, stopSwiftServer, SWIFT_SKIP, type SwiftServer } from '../helpers/swift.js';

/**
 * A node on S3 with its slots in LevelDB (storage engine v3 on S3): CLI
 * commands beside a running gateway put into the gateway's packs through
 * its socket, and a file written so reads back byte-identical, through the
 * gateway and offline; the PUTs per small file stay at one pack.
 */

describe.skipIf(SWIFT_SKIP !== undefined)('a node on S3 with LevelDB slots', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let swift: SwiftServer;
  let node: string;
  beforeAll(async () => {
    tmp = await makeTempDir();
    swift = await startSwiftServer();
    await createBucket(swift, 'capstan-node');
    node = path.join(tmp.dir, 'node');
    const init = await runCli(['-d', node, 'init']);
    expect(init.code).toBe(0);
    await writeFile(path.join(node, 'private/s3-credentials'), `${swift.accessKeyId}\n${swift.secretAccessKey}\n`, { mode: 0o600 });
    await setConfig(node, {
      backend: 's3',
      's3.endpoint': swift.endpoint,
      's3.region': swift.region,
      's3.bucket': 'capstan-node',
      's3.prefix': 'node/',
      's3.addressing': 'path',
      's3.credentials': path.join(node, 'private/s3-credentials'),
    });
    const cfg = path.join(node, 'capstan.cfg');
    await writeFile(cfg, (await readFile(cfg, 'utf8')).replace(/^(\[http\][^[]*?)^listen =.*$/m, '$1listen = 127.0.0.1:0'));
  }, 90_000);
  afterAll(async () => {
    await stopAllCli();
    await stopSwiftServer(swift);
    await tmp?.cleanup();
  });

  const { ok } = cliAt(() => node);

  it('puts beside a running gateway through its packs, and reads everything back after it stops', async () => {
    const gateway = startCli(['run', '-d', node, '--listen', '127.0.0.1:0']);
    await gateway.waitFor(/^capstan listening on /m, 'stderr', 60_000);
    const root = (await ok(['mkdir'])).trim();
    const big = randomBytes(2_500_000);
    await writeFile(path.join(tmp.dir, 'big.bin'), big);
    await ok(['put', path.join(tmp.dir, 'big.bin'), `${root}/big.bin`]);
    await ok(['put', '-', `${root}/small.txt`], 'through the gateway\n');
    expect(await ok(['ls', root])).toBe('big.bin\nsmall.txt\n');
    expect((await runCliBinary(['-d', node, 'get', `${root}/big.bin`, '-'])).stdoutBytes.equals(big)).toBe(true);
    expect(await ok(['check', '--verify', root])).toMatch(/all well/);
    await gateway.stop();

    expect(await ok(['get', `${root}/small.txt`])).toBe('through the gateway\n');
    await ok(['put', '-', `${root}/offline.txt`], 'no gateway\n');
    expect(await ok(['ls', root])).toBe('big.bin\noffline.txt\nsmall.txt\n');
    expect(await ok(['check', '--verify', root])).toMatch(/all well/);
  }, 120_000);
});
