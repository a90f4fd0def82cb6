import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real sshd/sshfs/gateways; two cores, so keep parallelism modest.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
    // Stops servers a fixture started but no afterAll stopped (a beforeAll that timed out mid-start).
    setupFiles: ['test/setup/stop-servers.ts'],
  },
});
