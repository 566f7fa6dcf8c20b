import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@diffssl/source'] },
  ssr: { resolve: { conditions: ['@diffssl/source'] } },
  test: { include: ['src/**/*.test.ts', 'test/**/*.test.ts'], testTimeout: 120_000 },
});
