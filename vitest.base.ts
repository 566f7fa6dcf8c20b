import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * The packages' shared test settings: sources resolved through the
 * `@diffssl/source` condition (no build needed), and generous timeouts for
 * tests *and* hooks, because turbo runs several packages' suites at once on
 * CI's two cores and a hook that builds a U-Net can take tens of seconds there.
 * Temporary files of a run go to a scratch folder removed at its end
 * (`vitest.scratch.ts`).
 */
export const packageTestConfig = defineConfig({
  resolve: { conditions: ['@diffssl/source'] },
  ssr: { resolve: { conditions: ['@diffssl/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    globalSetup: [fileURLToPath(new URL('./vitest.scratch.ts', import.meta.url))],
  },
});
