import fs from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log.js';
import { type Gateway, startGateway } from '../../src/node/gateway.js';
import { generateSshKeyPair } from '../../src/node/ssh-keygen.js';
import { cliOk, makeTempDir } from '../helpers/cli.js';
import { peersOrSkip, requirePeers, sftpBatch, type Target } from '../helpers/openssh.js';

/**
 * A full disk under a gateway on the embedded default (docs/operations.md,
 * A full disk), with the gateway in this process so that the journal's
 * writes can be made to fail with ENOSPC (a fake only to inject the fault):
 * the upload fails at its CLOSE and its name keeps its previous version,
 * /healthz says why, downloads go on, and a restart serves exactly what
 * was acknowledged and takes uploads again.
 */
const skip = peersOrSkip('full-disk test', 'sftp');

describe.skipIf(skip !== undefined)('a full disk under a running gateway', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let node: string;
  let keyFile: string;
  let gateway: Gateway | undefined;
  const originalWritev = fs.writevSync;

  beforeAll(async () => {
    requirePeers('sftp');
    tmp = await makeTempDir('capstan-full-disk-');
    node = path.join(tmp.dir, 'node');
    await cliOk(node, ['init']);
    const cfg = path.join(node, 'capstan.cfg');
    const text = await readFile(cfg, 'utf8');
    await writeFile(
      cfg,
      text
        .replace(/^listen = 127\.0\.0\.1:8022$/m, 'listen = 127.0.0.1:0')
        .replace(/^(\[http\][^[]*?)^listen =.*$/m, '$1listen = 127.0.0.1:0'),
    );
    const pair = generateSshKeyPair('ed25519');
    keyFile = path.join(tmp.dir, 'alice');
    await writeFile(keyFile, pair.private, { mode: 0o600 });
    await writeFile(`${keyFile}.pub`, `${pair.public}\n`);
    await cliOk(node, ['account', 'add', 'alice', '--key', `${keyFile}.pub`]);
  }, 60_000);

  afterAll(async () => {
    fs.writevSync = originalWritev;
    syncBuiltinESMExports();
    await gateway?.stop();
    await tmp?.cleanup();
  });

  async function start(): Promise<{ target: Target; health: () => Promise<{ status: number; text: string }> }> {
    gateway = await startGateway(await loadConfig(node), silentLogger());
    const target = { port: gateway.sftp!.address.port, user: 'alice', keyFile };
    const http = `http://127.0.0.1:${gateway.http!.port}/healthz`;
    const health = async () => {
      const res = await fetch(http);
      return { status: res.status, text: await res.text() };
    };
    return { target, health };
  }

  it('fails the upload at CLOSE and keeps the earlier version, says so in /healthz, serves downloads; a restart takes uploads again', async () => {
    const v1 = Buffer.alloc(20_000, 1);
    const v2 = Buffer.alloc(30_000, 2);
    await writeFile(path.join(tmp.dir, 'v1'), v1);
    await writeFile(path.join(tmp.dir, 'v2'), v2);
    const first = await start();
    expect((await sftpBatch(first.target, tmp.dir, ['put v1 f'])).code).toBe(0);
    expect(await first.health()).toEqual({ status: 200, text: 'ok\n' });

    fs.writevSync = () => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    };
    syncBuiltinESMExports();
    const refused = await sftpBatch(first.target, tmp.dir, ['put v2 f']);
    // Space is back at once; the gateway still refuses, as the docs say, until a restart.
    fs.writevSync = originalWritev;
    syncBuiltinESMExports();
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Failure/);
    expect(await first.health()).toEqual({ status: 503, text: 'unhealthy: commit path: TransientError\n' });
    const got = await sftpBatch(first.target, tmp.dir, ['get f got1']);
    expect(got.code, got.stderr).toBe(0);
    expect((await readFile(path.join(tmp.dir, 'got1'))).equals(v1)).toBe(true);
    expect((await sftpBatch(first.target, tmp.dir, ['mkdir d'])).code).not.toBe(0);
    await gateway!.stop();

    const second = await start();
    expect(await second.health()).toEqual({ status: 200, text: 'ok\n' });
    const back = await sftpBatch(second.target, tmp.dir, ['get f got2', 'put v2 g', 'get g got3']);
    expect(back.code, back.stderr).toBe(0);
    expect((await readFile(path.join(tmp.dir, 'got2'))).equals(v1)).toBe(true);
    expect((await readFile(path.join(tmp.dir, 'got3'))).equals(v2)).toBe(true);
  }, 60_000);
});
