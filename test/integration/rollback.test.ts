import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type DirectoryWriteCap, parseCap } from '../../src/cap/index.js';
import { makeTempDir, runCli, stopAllCli } from '../helpers/cli.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { sftpBatch } from '../helpers/openssh.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * Issue 13, item 3, with the adversary the threat model names: a database
 * administrator who puts an older, validly signed version of a directory
 * back into PostgreSQL while a gateway serves it. OpenSSH sftp is refused
 * (the gateway logs slot_rollback at error, naming the storage index), so
 * is the CLI on the same node, and serving resumes once the row is
 * restored.
 */

let tmp: { dir: string; cleanup: () => Promise<void> };
let postgres: TestPostgres;
let cluster: Cluster;

beforeAll(async () => {
  tmp = await makeTempDir('capstan-rollback-');
  postgres = await startPostgres();
  cluster = await startCluster(tmp.dir, { gateways: 1, postgres, users: ['alice'] });
}, 120_000);
afterAll(async () => {
  await stopAllCli();
  await postgres?.stop();
  await tmp?.cleanup();
});

describe('a rolled-back directory in PostgreSQL', () => {
  it('is refused by the gateway and the CLI, logged with its storage index, and served again once restored', async () => {
    const gw = cluster.gateways[0]!;
    const target = { port: gw.port, user: 'alice', keyFile: cluster.keyFile };
    await writeFile(path.join(tmp.dir, 'a.txt'), 'first\n');
    await writeFile(path.join(tmp.dir, 'b.txt'), 'second\n');
    expect((await sftpBatch(target, tmp.dir, ['put a.txt /a.txt'])).code).toBe(0);

    const cfg = await readFile(path.join(gw.node, 'capstan.cfg'), 'utf8');
    const schema = /^slots\.postgres\.schema = (\S+)$/m.exec(cfg)![1]!;
    const root = parseCap(cluster.root) as DirectoryWriteCap;
    const si = Buffer.from(root.storageIndex);
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      const row = async () =>
        (await db.query(`SELECT seq::text AS seq, record FROM "${schema}".capstan_slots WHERE storage_index = $1`, [si])).rows[0] as {
          seq: string;
          record: Buffer;
        };
      const old = await row();
      expect((await sftpBatch(target, tmp.dir, ['put b.txt /b.txt', 'ls -1 /'])).stdout).toMatch(/b\.txt/);
      const current = await row();
      expect(BigInt(current.seq)).toBeGreaterThan(BigInt(old.seq));

      const put = (r: { seq: string; record: Buffer }) =>
        db.query(`UPDATE "${schema}".capstan_slots SET seq = $2::numeric, record = $3 WHERE storage_index = $1`, [si, r.seq, r.record]);
      await put(old);
      const refused = await sftpBatch(target, tmp.dir, ['ls -1 /']);
      expect(refused.code).not.toBe(0);
      expect(refused.stdout + refused.stderr).not.toMatch(/b\.txt/);
      const logged = await gw.proc.waitFor(/^.*"event":"slot_rollback".*$/m, 'stdout');
      expect(logged[0]).toContain(si.toString('hex'));
      expect(logged[0]).toContain('"level":50');
      expect(logged[0]).not.toMatch(/CS1:/);

      // The CLI of the same node knows the newer version too (the node's watermark file).
      await vi.waitFor(
        async () => {
          const r = await runCli(['-d', gw.node, 'ls', cluster.root]);
          expect(r.code).not.toBe(0);
          expect(r.stderr).toMatch(/integrity check failed/);
          expect(r.stderr).not.toMatch(/CS1:/);
        },
        { timeout: 10_000, interval: 300 },
      );

      await put(current);
      const served = await sftpBatch(target, tmp.dir, ['ls -1 /']);
      expect(served.code).toBe(0);
      expect(served.stdout).toMatch(/a\.txt/);
      expect(served.stdout).toMatch(/b\.txt/);
    } finally {
      await db.end();
    }
  }, 120_000);
});
