// Bundles browser/main.ts with Vite for the browser and fails when any Node
// built-in (`node:fs`, or a bare `fs`, `crypto`, ...) is imported by the
// bundled code, or when Vite externalizes one "for browser compatibility".
// The one exception is the standard opt-out of a package that runs in both
// worlds: a `browser` field in its package.json that maps the built-in to
// `false` (an empty module in browsers), as protobufjs does for its guarded
// `require("fs")`.
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { build } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const pulledIn = [];
const mappedAway = new Set();
const warnings = [];

/** The package.json of the package a file belongs to. */
function packageJsonOf(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const path = join(dir, 'package.json');
    if (existsSync(path)) return { path, manifest: JSON.parse(readFileSync(path, 'utf8')) };
  }
  return undefined;
}

const nodeBuiltinGuard = {
  name: 'node-builtin-guard',
  enforce: 'pre',
  resolveId(source, importer) {
    if (!(source.startsWith('node:') || builtins.has(source) || builtins.has(source.split('/')[0]))) return null;
    const owner = importer ? packageJsonOf(importer.split('?')[0]) : undefined;
    const browser = owner?.manifest.browser;
    if (browser && typeof browser === 'object' && browser[source] === false) {
      mappedAway.add(`${source} in ${owner.manifest.name} (its browser field maps it to an empty module)`);
      return null;
    }
    pulledIn.push(`${source} (imported by ${importer ?? 'the entry'})`);
    return null;
  },
};

await build({
  root: here,
  configFile: false,
  logLevel: 'warn',
  plugins: [nodeBuiltinGuard],
  customLogger: {
    info() {},
    warn(message) {
      warnings.push(message);
    },
    warnOnce(message) {
      warnings.push(message);
    },
    error(message) {
      warnings.push(message);
    },
    clearScreen() {},
    hasErrorLogged() {
      return false;
    },
    hasWarned: false,
  },
  build: { outDir: join(here, 'dist'), emptyOutDir: true, minify: false, chunkSizeWarningLimit: 100_000 },
});

const externalized = warnings.filter((message) => /externalized for browser compatibility/.test(message));
const files = readdirSync(join(here, 'dist', 'assets')).filter((name) => name.endsWith('.js'));
// Imports of built-ins left in the output (a bundle for browsers must not import them at all).
const leftImports = files.flatMap((name) => {
  const code = readFileSync(join(here, 'dist', 'assets', name), 'utf8');
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["'](node:[\w/]+|[\w/]+)["']/g)]
    .map((match) => match[1])
    .filter((id) => id.startsWith('node:') || builtins.has(id) || builtins.has(id.split('/')[0]))
    .map((id) => `${name} imports ${id}`);
});
if (pulledIn.length > 0 || externalized.length > 0 || leftImports.length > 0) {
  console.error(['browser bundle: Node built-ins were pulled in:', ...pulledIn, ...externalized, ...leftImports].join('\n  '));
  process.exit(1);
}
const bytes = files.reduce((sum, name) => sum + readFileSync(join(here, 'dist', 'assets', name)).length, 0);
const notes = [...mappedAway].map((note) => `\n  allowed: ${note}`).join('');
console.log(
  `browser bundle: ${files.length} JS file(s), ${(bytes / 1e6).toFixed(2)} MB, no Node built-ins${notes}${warnings.length ? `\n  other Vite messages:\n${warnings.join('\n')}` : ''}`,
);
