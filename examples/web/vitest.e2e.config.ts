import { defineConfig } from 'vitest/config';

// The end-to-end test: the built page in headless Chromium (run by `pnpm test:e2e`, which builds first).
export default defineConfig({
  resolve: { conditions: ['@diffssl/source'] },
  ssr: { resolve: { conditions: ['@diffssl/source'] } },
  test: { include: ['test/e2e/*.test.ts'], testTimeout: 1_200_000, hookTimeout: 600_000, fileParallelism: false, globalSetup: ['../../vitest.scratch.ts'] },
});
