import { defineConfig, type Options } from 'tsup';

/**
 * The tsup build every library package shares, for Node 20+: ESM (`.js`,
 * `.d.ts`, split into shared chunks) and CommonJS (`.cjs`, `.d.cts`) side by
 * side, with source maps. `shims` gives the CommonJS files an
 * `import.meta.url` built from `__filename`, so code that resolves files
 * beside itself (onnxruntime-node, package versions) runs in both.
 */
export function libraryConfig(entry: string[], extra: Options[] = []) {
  return defineConfig([
    { entry, format: ['esm', 'cjs'], dts: true, sourcemap: true, clean: true, splitting: true, shims: true, treeshake: true, target: 'node20' },
    ...extra,
  ]);
}
