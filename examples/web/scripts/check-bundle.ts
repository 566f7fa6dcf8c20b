/**
 * Checks that a built page (Vite's output folder) pulls in no Node built-in:
 * no static or dynamic `import` of one (parsed with es-module-lexer), no
 * CommonJS `require()` of one, and no Vite browser stub of one
 * (`__vite-browser-external`). Exits 1 listing what it found.
 *
 * Strings that merely name a built-in are not imports: onnxruntime-web's
 * bundle keeps Node-only branches behind its own guarded loader (dead in
 * browsers); they are counted and listed, not failed.
 *
 * Usage: `node --import tsx scripts/check-bundle.ts [dist]`
 */
import { readdir, readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { init, parse } from 'es-module-lexer';

const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const isBuiltin = (specifier: string) => builtins.has(specifier) || specifier.startsWith('node:');

/** Every .js/.mjs file under a folder. */
async function scripts(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && /\.m?js$/.test(entry.name)).map((entry) => join(entry.parentPath, entry.name));
}

/** Problems and notes of one built file. */
export function scanBundle(code: string): { imports: string[]; requires: string[]; stubs: number; namedOnly: string[] } {
  const [imports] = parse(code);
  const imported = imports.map((entry) => entry.specifier).filter((name): name is string => typeof name === 'string' && isBuiltin(name));
  const requires = [...code.matchAll(/\brequire\s*\(\s*(["'`])([^"'`]+)\1\s*\)/g)].map((match) => match[2]!).filter(isBuiltin);
  const stubs = code.split('__vite-browser-external').length - 1;
  const namedOnly = [...new Set([...code.matchAll(/["'`](node:[a-z_/]+)["'`]/g)].map((match) => match[1]!))].filter(
    (name) => !imported.includes(name) && !requires.includes(name),
  );
  return { imports: imported, requires, stubs, namedOnly };
}

async function main(): Promise<void> {
  const folder = process.argv[2] ?? 'dist';
  await init;
  const files = await scripts(folder);
  if (files.length === 0) throw new Error(`check-bundle: no .js files under ${folder}; build the page first (vite build)`);
  const failures: string[] = [];
  for (const file of files) {
    const name = relative(folder, file);
    const { imports, requires, stubs, namedOnly } = scanBundle(await readFile(file, 'utf8'));
    for (const specifier of imports) failures.push(`${name}: imports the Node built-in '${specifier}'`);
    for (const specifier of requires) failures.push(`${name}: requires the Node built-in '${specifier}'`);
    if (stubs > 0) failures.push(`${name}: holds ${stubs} Vite browser stub(s) of Node modules (__vite-browser-external)`);
    if (namedOnly.length > 0) console.log(`check-bundle: note: ${name} names ${namedOnly.join(', ')} in strings only (not imported or required)`);
  }
  if (failures.length > 0) {
    console.error(`check-bundle: the page bundle pulls in Node built-ins:\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`check-bundle: ${files.length} script(s) under ${folder}: no Node built-in imported or required`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
