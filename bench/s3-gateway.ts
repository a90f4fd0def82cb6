import { mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { S3ChunkStore } from '../src/store/chunks/s3/index.js';
import { settle, type BenchContext, type BenchResults } from './context.js';
import { CountingProxy, countsBetween, perFile } from './counting-proxy.js';
import { stampFile, writeRandomFile, writeSmallFiles } from './data.js';
import { freePort } from './procs.js';
import { loadSwiftLauncher, type SwiftHandle } from './repo.js';
import type { Workload } from './schedule.js';
import {
  logTrouble,
  runCapstan,
  setCapstanConfig,
  startCapstan,
  type CapstanOptions,
  type CapstanS3,
  type CapstanServer,
} from './servers.js';
import { q, sftpBatch, timedBatch } from './sftp.js';

/**
 * Workload `s3`: a second capstan gateway whose chunks live in S3, a real
 * OpenStack Swift with s3api on loopback (scripts/swift-server.mjs).
 * capstan only, one run:
 *
 * 1. the big file put and got (MB/s), the gateway talking to Swift directly;
 * 2. the gateway restarted on the same node directory with its s3.endpoint
 *    pointing at a counting proxy in front of Swift (counting-proxy.ts), and
 *    `s3SmallFiles` small files put in one session; the S3 requests that
 *    cost, by method, counted exactly by the proxy from the session's first
 *    put to its end, and then until the gateway has exited (it is stopped
 *    right after, so work it defers, such as an index it writes later, is
 *    counted too and shown apart). Its slots stay in LevelDB, so every
 *    request is chunk-store traffic.
 *
 * The proxy is not in the way of the big transfers: it costs the harness
 * about 3 CPU-seconds per GiB it relays (more on a loaded machine), on the
 * same two cores as the gateway and Swift, which would lower the MB/s.
 *
 * Swift, the proxy and that gateway exist only while the workload runs and
 * are stopped by pid at its end, also on failure. Without python3-swift (or
 * memcached), or when Swift does not come up, the rows say skipped and why.
 */

const BUCKET = 'capstan-bench';
const SMALL_DIR = 'small-s3';

export interface S3WorkloadOptions {
  /** Repository root (dist/cli/main.js). */
  repo: string;
  /** The run's scratch folder; the gateway's node directory goes in a subfolder. */
  workDir: string;
}

export function s3Workload(ctx: BenchContext, results: BenchResults, o: S3WorkloadOptions): Workload {
  const { bigFile, s3SmallFiles, smallFileSize } = ctx.sizes;
  // The transfer workload's file when it ran (it is removed only at the very end), else made here.
  const local = path.join(ctx.dataDir, 'big.bin');
  const smallDir = path.join(ctx.dataDir, 'small-s3');
  let generated = false;
  return {
    name: 's3',
    what: `put and get of one ${bigFile / 2 ** 20} MiB file, and S3 requests per small file, through a gateway whose chunks are in S3 (local Swift)`,
    repeatable: false,
    async run() {
      const { swiftUnavailable, startSwift, stopSwift } = await loadSwiftLauncher();
      const unavailable = swiftUnavailable();
      if (unavailable) {
        results.s3 = { fileBytes: bigFile, skipped: unavailable };
        ctx.log(`  skipped: ${unavailable}`);
        return;
      }
      if ((await stat(local).catch(() => undefined))?.size !== bigFile) {
        const started = performance.now();
        await writeRandomFile(local, bigFile);
        generated = true;
        results.setupSeconds['generate big file (s3)'] = (performance.now() - started) / 1000;
      }
      await writeSmallFiles(smallDir, s3SmallFiles, smallFileSize);
      const started = performance.now();
      let swift: SwiftHandle | undefined;
      let proxy: CountingProxy | undefined;
      let gateway: CapstanServer | undefined;
      const workDir = path.join(o.workDir, 's3-gateway');
      // The gateway's warnings and the proxy's answers, for the error of a run that fails: the
      // gateway, Swift and the proxy are gone by the time anyone reads it.
      const explain = async (err: unknown): Promise<Error> => {
        const trouble = await logTrouble(path.join(workDir, 'capstan.log'));
        const answers = proxy === undefined ? '' : `\nS3 answers through the counting proxy, by status: ${JSON.stringify(proxy.answers())}`;
        const log = trouble === '' ? '\nno warnings in the S3 gateway log' : `\nthe S3 gateway's last warnings:\n${trouble}`;
        return new Error(`${(err as Error).message}${answers}${log}`, { cause: err });
      };
      const explained = <T>(batch: Promise<T>): Promise<T> =>
        batch.catch(async (err: unknown) => {
          throw await explain(err);
        });
      try {
        try {
          swift = await startSwift();
        } catch (err) {
          // startSwift stops what it started before throwing.
          const reason = `Swift did not start: ${String((err as Error).message).split('\n')[0]}`;
          results.s3 = { fileBytes: bigFile, skipped: reason };
          ctx.log(`  skipped: ${reason}`);
          return;
        }
        const s3: CapstanS3 = {
          endpoint: swift.endpoint,
          region: swift.region,
          bucket: BUCKET,
          prefix: 'bench/',
          accessKeyId: swift.accessKeyId,
          secretAccessKey: swift.secretAccessKey,
        };
        await createBucket(s3);
        await mkdir(workDir);
        const options: CapstanOptions = {
          registry: ctx.registry,
          repo: o.repo,
          workDir,
          publicKeyFile: `${ctx.client.keyFile}.pub`,
          port: await freePort(),
          s3,
        };
        gateway = await startCapstan(options);
        results.setupSeconds['start Swift and the S3 gateway'] = (performance.now() - started) / 1000;

        await stampFile(local, bigFile);
        await settle(ctx);
        const put = await explained(timedBatch(ctx.client, gateway, [], [`put ${q(local)} big-s3.bin`]));
        // The gateway's read cache fills only on get, so this get fetches every chunk from Swift.
        await settle(ctx);
        const get = await explained(timedBatch(ctx.client, gateway, [], ['get big-s3.bin /dev/null']));
        results.s3 = { fileBytes: bigFile, putMBps: bigFile / 1e6 / put.seconds, getMBps: bigFile / 1e6 / get.seconds };
        ctx.log(`  capstan on S3: put ${results.s3.putMBps!.toFixed(1)} MB/s, get ${results.s3.getMBps!.toFixed(1)} MB/s`);

        // The folder first, in its own session, so that its requests are not counted.
        await sftpBatch(ctx.client, gateway, [`mkdir ${SMALL_DIR}`]);
        await gateway.stop();
        proxy = await CountingProxy.start(swift.endpoint);
        await setCapstanConfig(gateway.nodeDir, { 's3.endpoint': proxy.endpoint });
        gateway = await runCapstan(options, gateway.nodeDir);
        await settle(ctx);
        const before = proxy.counts();
        const small = await explained(timedBatch(ctx.client, gateway, [`cd ${SMALL_DIR}`], [`put ${q(smallDir)}/*`]));
        const afterSession = proxy.counts();
        await gateway.stop();
        const afterExit = proxy.counts();
        const smallFiles = {
          files: s3SmallFiles,
          fileBytes: smallFileSize,
          filesPerSec: s3SmallFiles / small.seconds,
          duringSession: countsBetween(before, afterSession),
          untilExit: countsBetween(afterSession, afterExit),
        };
        results.s3.smallFiles = smallFiles;
        ctx.log(
          `  capstan on S3: ${smallFiles.filesPerSec.toFixed(0)} small files/s; S3 requests per file: ${perFile(smallFiles.duringSession, s3SmallFiles)} (session), ${perFile(smallFiles.untilExit, s3SmallFiles)} (until exit)`,
        );
      } finally {
        await gateway?.stop();
        await proxy?.close();
        if (swift) await stopSwift(swift);
      }
    },
    async cleanup() {
      await rm(smallDir, { recursive: true, force: true });
      if (generated) await rm(local, { force: true });
    },
  };
}

async function createBucket(s3: CapstanS3): Promise<void> {
  const store = new S3ChunkStore({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    prefix: s3.prefix,
    addressing: 'path',
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  try {
    await store.createBucket();
  } finally {
    await store.close();
  }
}
