import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ["src/index.ts", "src/index.browser.ts"],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  treeshake: true,
  target: 'node20',
});
