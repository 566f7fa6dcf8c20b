import { defineConfig } from 'vitest/config';

// Unit tests of the page's logic, in Node (the end-to-end test has its own config).
export default defineConfig({
  resolve: { conditions: ['@diffssl/source'] },
  ssr: { resolve: { conditions: ['@diffssl/source'] } },
  test: { include: ['test/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, globalSetup: ['../../vitest.scratch.ts'] },
});
