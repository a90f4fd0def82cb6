import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { S3ChunkStore } from '../src/store/s3/index.js';
import type { ChunkAddress } from '../src/store/index.js';

/**
 * 1 MiB PUT/GET throughput of S3ChunkStore against an S3 endpoint, with
 * `concurrency` requests in flight. Against the test Swift:
 *
 *     node scripts/swift-server.mjs start     # prints the endpoint and dir
 *     npm run build:bench && node dist-bench/bench/s3.js http://127.0.0.1:PORT [chunks=256] [concurrency=8]
 *     node scripts/swift-server.mjs stop DIR
 *
 * Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the test Swift's
 * (test:tester / testing). Bucket `capstan-bench`, created if missing, and a
 * fresh prefix per run, deleted afterwards.
 */
async function main(argv: string[]): Promise<void> {
  const [endpoint, chunksArg = '256', concurrencyArg = '8'] = argv;
  if (!endpoint) throw new Error('usage: s3.js ENDPOINT [chunks] [concurrency]');
  const chunks = Number(chunksArg);
  const concurrency = Number(concurrencyArg);
  const store = new S3ChunkStore({
    endpoint,
    region: process.env['AWS_REGION'] ?? 'us-east-1',
    bucket: 'capstan-bench',
    prefix: `bench-${Date.now()}/`,
    credentials: {
      accessKeyId: process.env['AWS_ACCESS_KEY_ID'] ?? 'test:tester',
      secretAccessKey: process.env['AWS_SECRET_ACCESS_KEY'] ?? 'testing',
    },
    concurrency,
  });
  try {
    await store.createBucket();
    const size = 1024 * 1024;
    // A few distinct buffers reused with a counter stamped in, so the bench
    // does not hold `chunks` MiB at once yet every chunk has its own address.
    const base = randomBytes(size);
    const chunkAt = (i: number): Uint8Array => {
      const b = Uint8Array.from(base);
      new DataView(b.buffer).setUint32(0, i);
      return b;
    };
    const addresses: ChunkAddress[] = new Array(chunks);
    const mib = (chunks * size) / (1024 * 1024);

    let next = 0;
    let t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < chunks; i = next++) addresses[i] = await store.put(chunkAt(i));
      }),
    );
    const putSeconds = (performance.now() - t0) / 1000;

    next = 0;
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < chunks; i = next++) await store.get(addresses[i]!);
      }),
    );
    const getSeconds = (performance.now() - t0) / 1000;

    process.stdout.write(
      `${chunks} x 1 MiB, concurrency ${concurrency}: PUT ${(mib / putSeconds).toFixed(1)} MiB/s, GET ${(mib / getSeconds).toFixed(1)} MiB/s (verified)\n`,
    );
    next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < chunks; i = next++) await store.delete(addresses[i]!);
      }),
    );
  } finally {
    await store.close();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bench s3: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
