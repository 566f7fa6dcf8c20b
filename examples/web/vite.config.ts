import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';
import { CROSS_ORIGIN_ISOLATION_HEADERS } from './scripts/headers.js';
import { ASSET_VERSION } from './src/assets.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The `browser` field of the package.json nearest to a file (its replacement map), if any. */
function browserMapOf(file: string): Record<string, unknown> | undefined {
  for (let directory = dirname(file); directory !== dirname(directory); directory = dirname(directory)) {
    const manifest = join(directory, 'package.json');
    if (!existsSync(manifest)) continue;
    const { browser } = JSON.parse(readFileSync(manifest, 'utf8')) as { browser?: unknown };
    return typeof browser === 'object' && browser !== null ? (browser as Record<string, unknown>) : undefined;
  }
  return undefined;
}

/**
 * Fails the build (and dev transforms) when any module of the page imports a
 * Node built-in, instead of Vite's default of an empty browser stub and a
 * warning: the packages' browser entries must not need one. The one exception
 * is a built-in that the importing package itself maps to `false` in its
 * package.json `browser` field (protobufjs does so for its guarded, optional
 * `require("fs")`): the package declares it absent in browsers.
 */
function noNodeBuiltins(): Plugin {
  return {
    name: 'diffssl:no-node-builtins',
    enforce: 'pre',
    resolveId(source, importer) {
      if (!isBuiltin(source) && !source.startsWith('__vite-browser-external')) return null;
      const file = importer?.split('?')[0];
      if (file && isAbsolute(file) && browserMapOf(file)?.[source] === false) return null;
      this.error(`the page must not import Node built-ins: ${importer ?? '(entry)'} imports '${source}'`);
    },
  };
}

/** Whether public/generated/ holds a complete set of this version's files. */
function generatedCurrent(): boolean {
  const manifest = `${here}public/generated/manifest.json`;
  if (!existsSync(manifest)) return false;
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: unknown }).version === ASSET_VERSION;
}

/** Runs scripts/prepare.ts when public/generated/ is missing or stale (a fresh clone's first `vite` or `vite build`). */
function generatedAssets(): Plugin {
  const ensure = () => {
    if (generatedCurrent()) return;
    const result = spawnSync(process.execPath, ['--conditions=@diffssl/source', '--import', 'tsx', 'scripts/prepare.ts'], { cwd: here, stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`scripts/prepare.ts failed (exit ${String(result.status)})`);
  };
  return { name: 'diffssl:generated-assets', configureServer: ensure, buildStart: ensure };
}

export default defineConfig({
  // Relative asset URLs, so that the build works from any folder it is served from.
  base: './',
  // The workspace packages resolve to their TypeScript sources (their browser entries); with
  // DIFFSSL_WEB_PACKAGES=dist, to their built files as a consumer gets them (run `pnpm build` first).
  resolve: { conditions: process.env.DIFFSSL_WEB_PACKAGES === 'dist' ? [...defaultClientConditions] : ['@diffssl/source', ...defaultClientConditions] },
  // onnxruntime-web loads its WASM glue relative to its own module; pre-bundling would move it.
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  build: { target: 'es2022', chunkSizeWarningLimit: 1024, reportCompressedSize: false },
  plugins: [generatedAssets(), noNodeBuiltins()],
  // Cross-origin isolated (COOP + COEP), so that onnxruntime-web's WASM runs several threads.
  preview: { host: '127.0.0.1', strictPort: false, headers: { ...CROSS_ORIGIN_ISOLATION_HEADERS } },
  server: { host: '127.0.0.1', headers: { ...CROSS_ORIGIN_ISOLATION_HEADERS } },
});
