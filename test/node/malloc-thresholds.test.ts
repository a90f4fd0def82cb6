import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MALLOC_THRESHOLD_BLOCK_BYTES, raiseMallocThresholds } from '../../src/node/malloc-thresholds.js';
import { REPO } from '../helpers/cli.js';

const run = promisify(execFile);

describe('raiseMallocThresholds (src/node/malloc-thresholds.ts)', () => {
  it('frees one block through one full collection; without a collection to call it does nothing', () => {
    let calls = 0;
    expect(raiseMallocThresholds(() => calls++)).toBe(true);
    expect(calls).toBe(1);
    expect(raiseMallocThresholds(undefined)).toBe(false);
    expect(MALLOC_THRESHOLD_BLOCK_BYTES).toBe(4 * 1024 * 1024);
  });

  it('after it, opening chunks on an offload thread reuses freed memory: a few page faults a chunk, not one per page', async () => {
    // Without it, a fresh process took 80–200 faults a chunk in about half the runs (and 256, one per
    // page, in a gateway); with it, about 3 in every run. Three fresh processes, as each start draws anew.
    for (let i = 0; i < 3; i++) {
      const { stdout } = await run(process.execPath, [
        '--expose-gc',
        '--single-threaded-gc',
        path.join(REPO, 'test/helpers/offload-faults.mjs'),
        path.join(REPO, 'dist'),
        'raise',
      ]);
      expect(Number(stdout.trim()), `run ${i}`).toBeLessThan(32);
    }
  });
});
