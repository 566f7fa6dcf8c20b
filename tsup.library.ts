import { defineConfig, type Options } from 'tsup';

/** The tsup build every library package shares: ESM with .d.ts and source maps, for Node 20+. */
export function libraryConfig(entry: string[], extra: Options[] = []) {
  return defineConfig([{ entry, format: ['esm'], dts: true, sourcemap: true, clean: true, splitting: true, treeshake: true, target: 'node20' }, ...extra]);
}
