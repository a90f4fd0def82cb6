import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, stopAllCli } from '../helpers/cli.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { expectLinks, makeLinkTree } from '../helpers/link-trees.js';
import { fuseUnavailable, missing, mountSshfs, run, sftpBatch, skipNotice } from '../helpers/openssh.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { SWIFT_SKIP, createBucket, startSwiftServer, stopSwiftServer, type SwiftServer } from '../helpers/swift.js';

/**
 * Symbolic links on the shared deployment: two `capstan run` gateways on
 * one PostgreSQL slot store, with chunks in a shared directory or in one S3
 * bucket (a real Swift on loopback). A tree rsynced through one gateway's sshfs
 * mount is, through the other, the same tree: a second rsync -a --delete
 * changes nothing, sftp lists and follows the links, and an escaping link
 * reaches only the account's root.
 */
const skip = skipNotice(postgresUnavailable() ?? fuseUnavailable() ?? missing('rsync', 'sftp'), 'symlinks on PostgreSQL slots');

interface ChunkBackend {
  name: string;
  skip?: string | undefined;
  chunks?: ((shared: string) => Record<string, string>) | undefined;
}

let swift: SwiftServer | undefined;
const backends: ChunkBackend[] = [
  { name: 'a shared fs directory' },
  {
    name: 'one S3 bucket',
    skip: SWIFT_SKIP,
    chunks: (shared) => {
      const server = swift!;
      writeFileSync(`${shared}/s3-credentials`, `${server.accessKeyId}\n${server.secretAccessKey}\n`, { mode: 0o600 });
      return {
        backend: 's3',
        's3.endpoint': server.endpoint,
        's3.region': server.region,
        's3.bucket': 'capstan-links',
        's3.prefix': 'links/',
        's3.addressing': 'path',
        's3.credentials': `${shared}/s3-credentials`,
      };
    },
  },
];

let tmp: { dir: string; cleanup: () => Promise<void> } | undefined;
let postgres: TestPostgres | undefined;
let cluster: Cluster;

describe.each(backends)('symbolic links on PostgreSQL slots, two gateways, chunks in $name', (backend) => {
  const skipped = skip ?? backend.skip;
  beforeAll(async () => {
    if (skipped !== undefined) return;
    tmp = await makeTempDir('capstan-links-pg-');
    postgres = await startPostgres();
    if (backend.chunks !== undefined) {
      swift = await startSwiftServer({ timeoutMs: 120_000 });
      await createBucket(swift, 'capstan-links');
    }
    cluster = await startCluster(tmp!.dir, { gateways: 2, postgres, users: ['alice'], chunks: backend.chunks });
  }, 240_000);
  afterAll(async () => {
    await stopAllCli();
    await stopSwiftServer(swift);
    swift = undefined;
    await postgres?.stop();
    postgres = undefined;
    await tmp?.cleanup();
    tmp = undefined;
  });

  it.skipIf(skipped !== undefined)(
    'rsync -a through one gateway, rsync -a --delete through the other changes nothing; sftp follows links inside the root',
    async () => {
      const [one, two] = cluster.gateways as [Cluster['gateways'][0], Cluster['gateways'][0]];
      const target = (gw: typeof one) => ({ port: gw.port, user: 'alice', keyFile: cluster.keyFile });
      const content = randomBytes(100_000);
      const src = path.join(tmp!.dir, 'src');
      const links = await makeLinkTree(src, content);
      const mnts = [path.join(tmp!.dir, 'mnt1'), path.join(tmp!.dir, 'mnt2')];
      for (const m of mnts) await mkdir(m);

      const first = await mountSshfs(target(one), mnts[0]!);
      try {
        const r = await run('rsync', ['-a', `${src}/`, `${mnts[0]}/r/`], { timeoutMs: 120_000 });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
      } finally {
        await first.unmount();
      }

      const second = await mountSshfs(target(two), mnts[1]!);
      try {
        await expectLinks(path.join(mnts[1]!, 'r'), links);
        expect(await readFile(path.join(mnts[1]!, 'r', 'd', 'f'))).toEqual(content);
        // As in sshfs-symlinks.test.ts: links this machine's FUSE will not read back are left out.
        const unreadable: string[] = [];
        for (const name of Object.keys(links)) {
          const eperm = await readlink(path.join(mnts[1]!, 'r', name)).then(
            () => false,
            (err: NodeJS.ErrnoException) => err.code === 'EPERM',
          );
          if (eperm) unreadable.push(name);
        }
        const again = await run(
          'rsync',
          ['-a', '--delete', '-i', ...unreadable.map((n) => `--exclude=/${n}`), `${src}/`, `${mnts[1]}/r/`],
          {
            timeoutMs: 120_000,
          },
        );
        expect(again.stderr).toBe('');
        expect(again.code).toBe(0);
        expect(again.stdout).toBe('');
      } finally {
        await second.unmount();
      }

      await writeFile(path.join(tmp!.dir, 'top.txt'), 'top of the root\n');
      const viaTwo = await sftpBatch(target(two), tmp!.dir, [
        'put top.txt /etc-passwd',
        'ls -l /r',
        'get /r/link back',
        'ln -s ../../../../etc-passwd /r/d/esc',
      ]);
      expect(viaTwo.code).toBe(0);
      expect(viaTwo.stdout).toMatch(/^lrwxrwxrwx .* evil -> \.\.\/\.\.\/etc\/passwd$/m);
      expect(await readFile(path.join(tmp!.dir, 'back'))).toEqual(content);
      const viaOne = await sftpBatch(target(one), tmp!.dir, ['get /r/d/esc esc', '-get /r/loop1 loop', 'get /r/dirlink/f back2']);
      expect(viaOne.code).toBe(0);
      expect(viaOne.stderr).toMatch(/Failure/);
      expect(await readFile(path.join(tmp!.dir, 'esc'), 'utf8')).toBe('top of the root\n');
      expect(await readFile(path.join(tmp!.dir, 'back2'))).toEqual(content);
    },
    300_000,
  );
});
