import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.base.ts';

/** The package's tests (`pnpm test`); the GPU suite (`test-gpu/`, `vitest.gpu.config.ts`) only announces itself here. */
export default defineConfig({
  ...packageTestConfig,
  test: {
    ...packageTestConfig.test,
    globalSetup: [fileURLToPath(new URL('../../vitest.scratch.ts', import.meta.url)), fileURLToPath(new URL('./test-gpu/announce.ts', import.meta.url))],
  },
});
