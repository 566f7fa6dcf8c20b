import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.base.ts';

/**
 * The GPU suite (`pnpm test:gpu`): `test-gpu/**\/*.gpu.test.ts`, on
 * onnxruntime-node's WebGPU provider only. Its global setup fails the run when
 * no WebGPU adapter is found. Files run one at a time: one device, and a
 * software device (lavapipe) uses every core.
 */
export default defineConfig({
  ...packageTestConfig,
  test: {
    ...packageTestConfig.test,
    include: ['test-gpu/**/*.gpu.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    globalSetup: [fileURLToPath(new URL('../../vitest.scratch.ts', import.meta.url)), fileURLToPath(new URL('./test-gpu/require-webgpu.ts', import.meta.url))],
  },
});
