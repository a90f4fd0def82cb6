import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

const run = promisify(execFile);

/**
 * Each chunk's view is dead on the calling thread as soon as its answer
 * came (the helper collects there after every request), so whatever the
 * process still holds afterwards is what the offload thread kept alive.
 * Before src/crypto/offload.worker.ts collected, that was every chunk: the
 * RSS grew by 192 MiB over 192 chunks of 1 MiB, for both requests.
 */
describe('offload thread: views into shared memory it was sent', () => {
  for (const op of ['sha256', 'pread'] as const) {
    it(`${op === 'sha256' ? 'sha256Shared' : 'preadSha256Shared'} keeps at most about 8 MiB of them alive, whatever their number`, async () => {
      const { stdout } = await run(process.execPath, [
        '--expose-gc',
        '--single-threaded-gc',
        path.join(REPO, 'test/helpers/offload-retention.mjs'),
        path.join(REPO, 'dist'),
        op,
        '192',
      ]);
      expect(Number(stdout.trim())).toBeLessThan(32);
    });
  }
});
